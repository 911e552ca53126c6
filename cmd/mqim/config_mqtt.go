package main

// MQTTConfig is the MQTT broker (protocol.md §1). Owned by the real-time
// layer; every capability is set on purpose.
type MQTTConfig struct {
	TCPAddr string `yaml:"tcp_addr"`
	WSAddr  string `yaml:"ws_addr"`
	TLSAddr string `yaml:"tls_addr"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// DefaultMQTTConfig returns the broker defaults.
func DefaultMQTTConfig() MQTTConfig {
	return MQTTConfig{TCPAddr: ":1883", WSAddr: ":8083", TLSAddr: ":8883"}
}

func (c *MQTTConfig) validate() []error { return nil }

// PushConfig is the offline push webhook (maxim-spec.md §9).
type PushConfig struct {
	WebhookURL string `yaml:"webhook_url"`
}

// DefaultPushConfig returns push off.
func DefaultPushConfig() PushConfig { return PushConfig{} }

func (c *PushConfig) validate() []error { return nil }
