package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// StepKind is what one message of a test does.
type StepKind int

// The message types of the catalogue.
const (
	// StepSend writes Data.
	StepSend StepKind = iota
	// StepRecv reads len(Data) bytes, which must equal Data.
	StepRecv
	// StepSubscribe sends SUBSCRIBE (packet id 1) for Topic at QoS and
	// expects the matching SUBACK.
	StepSubscribe
	// StepUnsubscribe sends UNSUBSCRIBE (packet id 1) for Topic and expects
	// the matching UNSUBACK.
	StepUnsubscribe
	// StepExternalPublish publishes Payload to Topic from a second
	// connection (client id "helper", MQTT 3.1.1) and closes it.
	StepExternalPublish
)

func (k StepKind) String() string {
	switch k {
	case StepSend:
		return "send"
	case StepRecv:
		return "recv"
	case StepSubscribe:
		return "subscribe"
	case StepUnsubscribe:
		return "unsubscribe"
	case StepExternalPublish:
		return "external_publish"
	}
	return fmt.Sprintf("StepKind(%d)", int(k))
}

// Step is one message of a test.
type Step struct {
	Kind StepKind
	// Data is the parsed payload of a send or recv step.
	Data []byte
	// Topic, QoS, Retain and Payload describe subscribe, unsubscribe and
	// external_publish steps. Payload is plain text, not payload notation.
	Topic   string
	QoS     byte
	Retain  bool
	Payload []byte
	// Comment is the catalogue's comment, used in failure reasons.
	Comment string
}

// Case is one runnable test of the catalogue with the group defaults applied.
type Case struct {
	// Index is the position in catalogue order (files sorted by name, then
	// groups and tests in file order), the order Mosquitto's harness runs.
	Index int
	// File is the base name of the JSON file, e.g. "CONNECT.json".
	File  string
	Group string
	Name  string
	// Ver is the protocol version: 3 (MQTT 3.1), 4 (3.1.1) or 5.
	Ver int
	// Connect means the runner first sends the default CONNECT and expects
	// a CONNACK with return code 0.
	Connect bool
	// ExpectDisconnect means the broker must have closed the connection
	// after the last step; otherwise a PINGREQ must get a PINGRESP.
	ExpectDisconnect bool
	Steps            []Step
}

// ClientID is the client id of the default CONNECT: the group name, a
// space, and the test name.
func (c *Case) ClientID() string { return c.Group + " " + c.Name }

// String names the case as "FILE: GROUP NAME".
func (c *Case) String() string { return c.File + ": " + c.ClientID() }

// rawGroup and rawTest mirror the JSON; pointers tell "absent" from false/0.
type rawGroup struct {
	Group            string    `json:"group"`
	Ver              *int      `json:"ver"`
	Connect          *bool     `json:"connect"`
	ExpectDisconnect *bool     `json:"expect_disconnect"`
	Disable          bool      `json:"disable"`
	Tests            []rawTest `json:"tests"`
}

type rawTest struct {
	Name             string   `json:"name"`
	Ver              *int     `json:"ver"`
	Connect          *bool    `json:"connect"`
	ExpectDisconnect *bool    `json:"expect_disconnect"`
	Msgs             []rawMsg `json:"msgs"`
}

type rawMsg struct {
	Type    string `json:"type"`
	Payload string `json:"payload"`
	Topic   string `json:"topic"`
	QoS     int    `json:"qos"`
	Retain  bool   `json:"retain"`
	Comment string `json:"comment"`
}

// LoadDir loads every *.json file of dir in name order and returns the
// cases in catalogue order.
func LoadDir(dir string) ([]*Case, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("load catalogue: no *.json files in %s", dir)
	}
	sort.Strings(paths)
	var all []*Case
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cases, err := ParseFile(filepath.Base(p), b)
		if err != nil {
			return nil, err
		}
		for _, c := range cases {
			c.Index = len(all)
			all = append(all, c)
		}
	}
	return all, nil
}

// ParseFile parses one catalogue file. name is recorded as Case.File.
// Groups with "disable": true are skipped.
func ParseFile(name string, data []byte) ([]*Case, error) {
	var groups []rawGroup
	if err := json.Unmarshal(data, &groups); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	var cases []*Case
	for _, g := range groups {
		if g.Disable {
			continue
		}
		gVer, gConnect, gExpect := 4, true, true
		if g.Ver != nil {
			gVer = *g.Ver
		}
		if g.Connect != nil {
			gConnect = *g.Connect
		}
		if g.ExpectDisconnect != nil {
			gExpect = *g.ExpectDisconnect
		}
		for _, t := range g.Tests {
			c := &Case{
				File: name, Group: g.Group, Name: t.Name,
				Ver: gVer, Connect: gConnect, ExpectDisconnect: gExpect,
			}
			if t.Ver != nil {
				c.Ver = *t.Ver
			}
			if t.Connect != nil {
				c.Connect = *t.Connect
			}
			if t.ExpectDisconnect != nil {
				c.ExpectDisconnect = *t.ExpectDisconnect
			}
			for i, m := range t.Msgs {
				st, err := parseStep(m)
				if err != nil {
					return nil, fmt.Errorf("%s: %s msg %d: %w", name, c.ClientID(), i, err)
				}
				c.Steps = append(c.Steps, st)
			}
			cases = append(cases, c)
		}
	}
	return cases, nil
}

func parseStep(m rawMsg) (Step, error) {
	st := Step{Topic: m.Topic, Retain: m.Retain, Comment: m.Comment}
	if m.QoS < 0 || m.QoS > 2 {
		return st, fmt.Errorf("qos %d out of range", m.QoS)
	}
	st.QoS = byte(m.QoS)
	switch m.Type {
	case "send", "recv":
		st.Kind = StepSend
		if m.Type == "recv" {
			st.Kind = StepRecv
		}
		b, err := ParsePayload(m.Payload)
		if err != nil {
			return st, err
		}
		st.Data = b
	case "subscribe":
		st.Kind = StepSubscribe
	case "unsubscribe":
		st.Kind = StepUnsubscribe
	case "external_publish":
		st.Kind = StepExternalPublish
		st.Payload = []byte(m.Payload)
	default:
		return st, fmt.Errorf("unknown message type %q", m.Type)
	}
	return st, nil
}
