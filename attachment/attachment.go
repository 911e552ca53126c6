// Package attachment keeps uploaded files on disk: server-generated names,
// sniffed content types, thumbnails for images, and a retention sweeper.
package attachment

// Store keeps attachments under a directory.
type Store struct{}
