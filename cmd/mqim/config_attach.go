package main

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/mqim/mqim/attachment"
)

// AttachConfig is the attachment store (docs/maxim.md §6, docs/attachments.md).
type AttachConfig struct {
	// PublicURL is the base of attachment URLs as clients reach the
	// server, e.g. https://im.example.com (no trailing slash needed). Empty:
	// each upload answers URLs built from the request's Host (or a proxy's
	// X-Forwarded-Host/-Proto), else from the HTTP listener's address.
	PublicURL string `yaml:"public_url"`
	// Dir holds the files; empty means <data_dir>/attachments.
	Dir string `yaml:"dir"`
	// MaxSize is the largest file in bytes (413/5011 past it).
	MaxSize int64 `yaml:"max_size"`
	// Retention is how long a file is kept after its upload; a negative
	// value keeps files for ever.
	Retention time.Duration `yaml:"retention"`
	// SweepInterval is how often expired files are deleted.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// MaxPixels is the largest image (width×height) that gets a thumbnail;
	// decoding takes up to 4 bytes a pixel (8 for 16-bit images, which the
	// limit counts double).
	MaxPixels int64 `yaml:"max_pixels"`
}

// DefaultAttachConfig returns the attachment defaults: MaxIM's 20 MB and
// 7 days (docs/maxim.md §1.6), an hourly sweep.
func DefaultAttachConfig() AttachConfig {
	return AttachConfig{
		MaxSize:       attachment.DefaultMaxSize,
		Retention:     attachment.DefaultRetention,
		SweepInterval: attachment.DefaultSweepInterval,
		MaxPixels:     attachment.DefaultMaxPixels,
	}
}

func (c *AttachConfig) validate() []error {
	var errs []error
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("attachments.public_url: %w", err))
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.RawQuery != "", u.Fragment != "", u.User != nil:
			errs = append(errs, fmt.Errorf("attachments.public_url %q: want http(s)://host[:port][/path]", c.PublicURL))
		}
	}
	if c.MaxSize <= 0 {
		errs = append(errs, errors.New("attachments.max_size must be positive"))
	}
	if c.Retention == 0 {
		errs = append(errs, errors.New("attachments.retention must not be 0 (negative keeps files for ever)"))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, errors.New("attachments.sweep_interval must be positive"))
	}
	if c.MaxPixels <= 0 {
		errs = append(errs, errors.New("attachments.max_pixels must be positive"))
	}
	return errs
}
