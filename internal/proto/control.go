package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Version of the transfer protocol carried in the manifest.
const Version = 1

// Limits a receiver enforces on a manifest before showing it to the user.
const (
	MaxFiles       = 1 << 20
	MaxPathLen     = 4096
	MaxPathElemLen = 255
	// MaxWindow bounds the credit a receiver may grant (chunks in flight).
	MaxWindow = 1 << 16
)

// Control is a CONTROL frame message; T() is its "t" discriminator.
type Control interface{ T() string }

// File describes one file of a transfer. Path is '/'-separated and relative.
type File struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime,omitempty"` // Unix milliseconds, 0 if unknown
}

// Manifest is the sender's first message: what it offers.
type Manifest struct {
	Version   int    `json:"version"`
	Agent     string `json:"agent,omitempty"`
	ChunkSize int    `json:"chunkSize"`
	TotalSize int64  `json:"totalSize"`
	Files     []File `json:"files"`
}

// Chunks returns the number of chunks of a file of this size.
func (m *Manifest) Chunks(size int64) uint32 {
	return ChunkCount(size, m.ChunkSize)
}

// ChunkCount returns ceil(size/chunkSize).
func ChunkCount(size int64, chunkSize int) uint32 {
	return uint32((size + int64(chunkSize) - 1) / int64(chunkSize))
}

// Range is a half-open range [Start, End) of chunk indices.
type Range [2]uint32

// ResumeFile lists the chunks of one file the receiver already holds verified.
type ResumeFile struct {
	File int     `json:"file"`
	Have []Range `json:"have"`
}

// Accept is the receiver's answer: it grants Window chunks of credit and may
// list chunks it already has from an earlier, interrupted connection.
type Accept struct {
	Window int          `json:"window"`
	Resume []ResumeFile `json:"resume,omitempty"`
}

// Decline refuses the offer.
type Decline struct {
	Reason string `json:"reason,omitempty"`
}

// Cancel stops the transfer from either side.
type Cancel struct {
	Reason string `json:"reason,omitempty"`
}

// EOF says every chunk of File has been sent at least once; Root is the
// BLAKE3 root (hex) the receiver must arrive at.
type EOF struct {
	File int    `json:"file"`
	Root string `json:"root"`
}

// Verified says File is complete on the receiver and its root matched.
type Verified struct {
	File int `json:"file"`
}

// Done says the sender has sent EOF for every file.
type Done struct{}

// Complete says the receiver holds every file, verified. The transfer is over.
type Complete struct{}

// Error reports a fatal protocol error; the connection is closed after it.
type Error struct {
	Code    string `json:"code"`
	File    *int   `json:"file,omitempty"`
	Message string `json:"message,omitempty"`
}

// Error codes.
const (
	CodeRootMismatch = "root_mismatch"
	CodeProtocol     = "protocol"
	CodeIO           = "io"
	CodeFileChanged  = "file_changed"
	CodeTooLarge     = "too_large"
)

func (*Manifest) T() string { return "manifest" }
func (*Accept) T() string   { return "accept" }
func (*Decline) T() string  { return "decline" }
func (*Cancel) T() string   { return "cancel" }
func (*EOF) T() string      { return "eof" }
func (*Verified) T() string { return "verified" }
func (*Done) T() string     { return "done" }
func (*Complete) T() string { return "complete" }
func (*Error) T() string    { return "error" }

func newControl(t string) Control {
	switch t {
	case "manifest":
		return &Manifest{TotalSize: -1} // -1: absent (or null) is refused
	case "accept":
		return &Accept{}
	case "decline":
		return &Decline{}
	case "cancel":
		return &Cancel{}
	case "eof":
		return &EOF{}
	case "verified":
		return &Verified{}
	case "done":
		return &Done{}
	case "complete":
		return &Complete{}
	case "error":
		return &Error{}
	}
	return nil
}

// EncodeControl returns the JSON of m with its "t" field first.
func EncodeControl(m Control) ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"t":`)
	t, _ := json.Marshal(m.T())
	b.Write(t)
	if len(js) > 2 {
		b.WriteByte(',')
		b.Write(js[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes(), nil
}

func decodeControl(js []byte) (Control, error) {
	var head struct {
		T string `json:"t"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	m := newControl(head.T)
	if m == nil {
		return nil, fmt.Errorf("%w: unknown type %q", ErrControl, head.T)
	}
	if err := json.Unmarshal(js, m); err != nil {
		if r := decodeReason(m, err); r != "" {
			return nil, &InvalidError{Reason: r, Detail: err.Error()}
		}
		return nil, fmt.Errorf("%w: %v", ErrControl, err)
	}
	if v, ok := m.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Reasons a manifest or an accept is refused (PROTOCOL.md §4.1, §4.2): the
// web client gives the same for the same message
// (testdata/vectors/manifests.json and accepts.json check both). A path
// breaking the name rules is refused with "path: " and PathProblem's reason.
const (
	BadMalformed     = "malformed"
	BadVersion       = "version"
	BadChunkSize     = "chunk size"
	BadFileCount     = "file count"
	BadPathPrefix    = "path: "
	BadSize          = "size"
	BadMtime         = "mtime"
	BadDuplicate     = "duplicate"
	BadFileAndFolder = "file and folder"
	BadTotalSize     = "total size"
	BadAgent         = "agent"
	BadWindow        = "window"
	BadResume        = "resume"
)

// MaxInteger is the largest size, total size or |mtime| a manifest may
// carry: 2^53 − 1, what every JSON implementation holds exactly.
const MaxInteger = 1<<53 - 1

// InvalidError is a manifest or accept that breaks the rules; it wraps
// ErrControl.
type InvalidError struct {
	Reason string // one of the Bad* reasons
	Detail string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrControl, e.Reason, e.Detail)
}

func (e *InvalidError) Unwrap() error { return ErrControl }

func invalid(reason, format string, a ...any) error {
	return &InvalidError{Reason: reason, Detail: fmt.Sprintf(format, a...)}
}

// decodeReason is the reason for a JSON value of the wrong type in a
// manifest or accept (by the field it was found in), or "".
func decodeReason(m Control, err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		switch m.(type) {
		case *Manifest, *Accept:
			return BadMalformed
		}
		return ""
	}
	switch m.(type) {
	case *Manifest:
		switch te.Field {
		case "version":
			return BadVersion
		case "chunkSize":
			return BadChunkSize
		case "files.size":
			return BadSize
		case "files.mtime":
			return BadMtime
		case "totalSize":
			return BadTotalSize
		case "agent":
			return BadAgent
		}
		return BadMalformed
	case *Accept:
		switch {
		case te.Field == "window":
			return BadWindow
		case strings.HasPrefix(te.Field, "resume"):
			return BadResume
		}
		return BadMalformed
	}
	return ""
}

// UnmarshalJSON marks a file without a size (or with size null) with -1,
// which validate refuses: unlike mtime, size has no default.
func (f *File) UnmarshalJSON(b []byte) error {
	type plain File
	p := plain{Size: -1}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*f = File(p)
	return nil
}

// UnmarshalJSON takes exactly two indices.
func (r *Range) UnmarshalJSON(b []byte) error {
	var ix []uint32
	if err := json.Unmarshal(b, &ix); err != nil {
		return err
	}
	if len(ix) != 2 {
		return &json.UnmarshalTypeError{Value: "array of " + fmt.Sprint(len(ix)), Type: reflect.TypeFor[Range]()}
	}
	*r = Range{ix[0], ix[1]}
	return nil
}

// UnmarshalJSON refuses an entry without a file index or a list of ranges.
func (r *ResumeFile) UnmarshalJSON(b []byte) error {
	type plain ResumeFile
	p := plain{File: -1}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.File < 0 || p.Have == nil {
		return &json.UnmarshalTypeError{Value: "incomplete entry", Type: reflect.TypeFor[ResumeFile]()}
	}
	*r = ResumeFile(p)
	return nil
}

func (m *Manifest) validate() error {
	if m.Version != Version {
		return invalid(BadVersion, "manifest version %d, want %d", m.Version, Version)
	}
	if m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize {
		return invalid(BadChunkSize, "chunk size %d out of range", m.ChunkSize)
	}
	if len(m.Files) == 0 || len(m.Files) > MaxFiles {
		return invalid(BadFileCount, "%d files", len(m.Files))
	}
	var total int64
	seen := make(map[string]struct{}, len(m.Files))
	for i, f := range m.Files {
		if why := PathProblem(f.Path); why != "" {
			return invalid(BadPathPrefix+why, "file %d: unsafe path %q", i, f.Path)
		}
		// Chunk indices are u32 on the wire.
		if f.Size < 0 || f.Size > MaxInteger || f.Size/int64(m.ChunkSize) >= math.MaxUint32 {
			return invalid(BadSize, "file %d size %d out of range", i, f.Size)
		}
		if f.Mtime < -MaxInteger || f.Mtime > MaxInteger {
			return invalid(BadMtime, "file %d mtime %d out of range", i, f.Mtime)
		}
		key := FoldPath(f.Path) // case-insensitive file systems would merge these
		if _, dup := seen[key]; dup {
			return invalid(BadDuplicate, "duplicate path %q", f.Path)
		}
		seen[key] = struct{}{}
		total += f.Size // no overflow: at most 2^20 sizes below 2^53
	}
	// A file must not be both a file and a directory of another entry.
	for _, f := range m.Files {
		for p := f.Path; ; {
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
			if _, clash := seen[FoldPath(p)]; clash {
				return invalid(BadFileAndFolder, "%q is both a file and a folder", p)
			}
		}
	}
	if total != m.TotalSize || total > MaxInteger {
		return invalid(BadTotalSize, "totalSize %d != sum of sizes %d", m.TotalSize, total)
	}
	return nil
}

func (a *Accept) validate() error {
	if a.Window < 1 || a.Window > MaxWindow {
		return invalid(BadWindow, "window %d out of range", a.Window)
	}
	for _, r := range a.Resume {
		for _, h := range r.Have {
			if h[0] >= h[1] {
				return invalid(BadResume, "empty or inverted range")
			}
		}
	}
	return nil
}

// CheckAccept checks an accept against the manifest it answers: every
// resumed file exists and every range lies within its chunks.
func CheckAccept(a *Accept, m *Manifest) error {
	for _, r := range a.Resume {
		if r.File >= len(m.Files) {
			return invalid(BadResume, "file %d of %d", r.File, len(m.Files))
		}
		n := m.Chunks(m.Files[r.File].Size)
		for _, h := range r.Have {
			if h[1] > n {
				return invalid(BadResume, "range [%d,%d) of file %d beyond its %d chunks", h[0], h[1], r.File, n)
			}
		}
	}
	return nil
}

func (e *EOF) validate() error {
	if e.File < 0 || len(e.Root) != 2*HashLen {
		return fmt.Errorf("%w: bad eof", ErrControl)
	}
	return nil
}

func (v *Verified) validate() error {
	if v.File < 0 {
		return fmt.Errorf("%w: bad file index", ErrControl)
	}
	return nil
}

// Reasons PathProblem gives; the TypeScript receiver gives the same ones
// (testdata/vectors/paths.json checks both).
const (
	PathEmpty          = "empty"
	PathTooLong        = "too long"
	PathNotUTF8        = "not UTF-8"
	PathAbsolute       = "absolute"
	PathControl        = "control character"
	PathBackslash      = "backslash"
	PathBidi           = "bidi control"
	PathInvisible      = "invisible character"
	PathEmptyElement   = "empty element"
	PathDotElement     = "dot element"
	PathElementTooLong = "element too long"
	PathDriveLetter    = "drive letter"
	PathDeviceName     = "device name"
)

// DeviceNames are refused as a path element, whatever the case, the
// extension or trailing spaces ("con", "Nul.tar.gz", "com1 .txt"), on
// every platform: a folder received on Linux is often copied to Windows
// later. The web client carries the same list (generated).
func DeviceNames() []string {
	return []string{
		"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
		"COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
	}
}

// isDeviceName says whether the path element el names a Windows device.
func isDeviceName(el string) bool {
	base := strings.ToUpper(el)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	for _, d := range DeviceNames() {
		if base == d {
			return true
		}
	}
	return false
}

// RuneProblem says why r may not appear in a file name, or "". Names are
// shown to people (terminal, page) before they decide to accept them, so
// nothing may hide or rearrange what they see (PROTOCOL.md §4.1):
//   - C0 and C1 controls, DEL, and the line and paragraph separators
//     U+2028/U+2029, which terminals act on;
//   - bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
//     U+2066–U+2069), which reorder what is shown: "invoice\u202Efdp.exe"
//     looks like "invoiceexe.pdf";
//   - invisible characters that make a name look like another or hide
//     text: soft hyphen, combining grapheme joiner, Hangul fillers, Khmer
//     inherent vowels, Mongolian vowel separator, zero width space, word
//     joiner and invisible operators, deprecated format controls, byte
//     order mark, interlinear annotation, tag characters.
//
// Zero width (non-)joiner and variation selectors stay allowed: Persian,
// Indic scripts and emoji need them. The list is explicit rather than a
// Unicode category, so Go and browsers agree whatever Unicode version
// each knows.
func RuneProblem(r rune) string {
	switch {
	case r < 0x20 || r >= 0x7f && r <= 0x9f || r == 0x2028 || r == 0x2029:
		return PathControl
	case r == '\\':
		return PathBackslash
	case r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
		return PathBidi
	case r == 0x00ad || r == 0x034f || r == 0x115f || r == 0x1160 || r == 0x17b4 || r == 0x17b5 || r == 0x180e ||
		r == 0x200b || r >= 0x2060 && r <= 0x2064 || r >= 0x206a && r <= 0x206f || r == 0x3164 || r == 0xfeff ||
		r == 0xffa0 || r >= 0xfff9 && r <= 0xfffb || r >= 0xe0000 && r <= 0xe007f:
		return PathInvisible
	}
	return ""
}

// PathProblem says why p breaks the platform-independent rules for a path
// in a manifest, or "" if it keeps them: relative, '/'-separated, no
// empty, "." or ".." elements, no drive letter, no Windows device name, no
// character RuneProblem refuses. Receivers add their own platform checks
// (symlinks, Windows' own rules on Windows) on top.
func PathProblem(p string) string {
	if p == "" {
		return PathEmpty
	}
	if len(p) > MaxPathLen {
		return PathTooLong
	}
	if !utf8.ValidString(p) {
		return PathNotUTF8
	}
	if p[0] == '/' {
		return PathAbsolute
	}
	for _, r := range p {
		if why := RuneProblem(r); why != "" {
			return why
		}
	}
	for _, el := range strings.Split(p, "/") {
		switch {
		case el == "":
			return PathEmptyElement
		case el == "." || el == "..":
			return PathDotElement
		case len(el) > MaxPathElemLen:
			return PathElementTooLong
		case len(el) >= 2 && el[1] == ':':
			return PathDriveLetter
		}
	}
	for _, el := range strings.Split(p, "/") {
		if isDeviceName(el) {
			return PathDeviceName
		}
	}
	return ""
}

// ValidatePath returns PathProblem's reason as an error.
func ValidatePath(p string) error {
	if why := PathProblem(p); why != "" {
		return fmt.Errorf("%w: unsafe path %q: %s", ErrControl, p, why)
	}
	return nil
}

// FoldPath is the key under which two paths count as the same: each code
// point by its Unicode simple lowercase mapping (so "İ" folds to "i", as
// in Go's strings.ToLower; JavaScript's toLowerCase would give "i̇").
// Case-insensitive file systems would store such paths as one file.
func FoldPath(p string) string { return strings.ToLower(p) }
