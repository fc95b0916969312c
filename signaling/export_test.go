package signaling

import "github.com/coder/websocket"

// CloseTable is closeCodes, for the shared close vectors.
func CloseTable() (errs []error, codes []websocket.StatusCode, reasons []string) {
	for _, c := range closeCodes {
		errs, codes, reasons = append(errs, c.err), append(codes, c.code), append(reasons, c.reason)
	}
	return errs, codes, reasons
}

// CloseFor is closeFor.
func CloseFor(err error) (websocket.StatusCode, string) { return closeFor(err) }
