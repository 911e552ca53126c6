// Package admin holds the admin console served at /admin: static files
// embedded in the binary, plain JavaScript that calls the public REST API
// with the master key the operator types in.
package admin

import (
	"embed"
	"io/fs"
)

//go:embed files
var files embed.FS

// Files are the console's files, index.html at the root.
func Files() fs.FS {
	sub, err := fs.Sub(files, "files")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}
