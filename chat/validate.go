package chat

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
)

// MaxIDLen is the longest user, passenger, group or room id.
const MaxIDLen = 128

// ValidID reports whether id matches ^[A-Za-z0-9_-]{1,128}$. The charset keeps
// ids safe inside MQTT topics: no '/', '+', '#', '$' or NUL can appear.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckID returns a CodeInvalid error naming what when id is not valid.
func CheckID(what, id string) error {
	if !ValidID(id) {
		return Errorf(CodeInvalid, "invalid %s id %q", what, truncate(id, 64))
	}
	return nil
}

// NormalizeMembers turns a decoded JSON members value into a clean id list:
// nested arrays are flattened one level (SDK-JS4 sends ["a",["b"]]), non
// strings and empty strings are dropped, duplicates removed, order kept
// (docs/maxim.md §3.0). Ids are not validated here.
func NormalizeMembers(v any) []string {
	seen := map[string]bool{}
	out := []string{}
	add := func(x any) {
		s, ok := x.(string)
		if !ok || s == "" || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			if inner, ok := x.([]any); ok {
				for _, y := range inner {
					add(y)
				}
				continue
			}
			add(x)
		}
	case string:
		add(t)
	}
	return out
}

// RandomHex returns n random bytes as 2n lowercase hex characters.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("chat: crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return hex.EncodeToString(b)
}

// NewGroupID returns a fresh 32-hex group, room or passenger id.
func NewGroupID() string { return RandomHex(16) }

// NewFriendshipID returns a fresh 16-hex friendship id.
func NewFriendshipID() string { return RandomHex(8) }

// NewMessageID returns a fresh message id (16 hex).
func NewMessageID() string { return RandomHex(8) }

// AttributeText returns the text form of a raw attribute value used by search
// filters: strings as-is, numbers in shortest form, booleans true/false. ok is
// false for objects, arrays and null, which never match (docs/maxim.md §5.1).
func AttributeText(raw json.RawMessage) (text string, ok bool) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	switch t := v.(type) {
	case string:
		return t, true
	case bool:
		if t {
			return "true", true
		}
		return "false", true
	case float64:
		b, _ := json.Marshal(t)
		return string(b), true
	}
	return "", false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
