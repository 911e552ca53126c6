package main

// AttachConfig is the attachment store (maxim-spec.md §6).
type AttachConfig struct {
	// PublicURL is the base of attachment URLs; empty derives it from the
	// HTTP listener.
	PublicURL string `yaml:"public_url"`
}

// DefaultAttachConfig returns the attachment defaults.
func DefaultAttachConfig() AttachConfig { return AttachConfig{} }

func (c *AttachConfig) validate() []error { return nil }
