// Package web serves the embedded browser client (placeholder until the
// TypeScript client lands).
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the browser client.
func Handler() http.Handler {
	sub, _ := fs.Sub(dist, "dist")
	return http.FileServerFS(sub)
}
