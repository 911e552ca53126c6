// Package demo holds the browser chat demo served at /demo: static files
// embedded in the binary. MQTT.js comes from npm at build time (make web
// copies it into files/vendor, which git ignores).
package demo

import (
	"embed"
	"io/fs"
)

//go:embed all:files
var files embed.FS

// Files are the demo's files, index.html at the root.
func Files() fs.FS {
	sub, err := fs.Sub(files, "files")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}
