package chat

import (
	"bytes"
	"encoding/json"
)

// AuthObject is MaxIM's login auth JSON (docs/maxim.md §4.1), as an MQTT
// password or a socket.io handshake carries it; Token is mqim's login token
// (docs/maxim.md §2.4) in place of App and Sign. The MQTT and socket.io
// logins read it through the methods below, so both apply the same rules.
type AuthObject struct {
	App       *string         `json:"app"`
	Sign      string          `json:"sign"`
	Token     string          `json:"token"`
	Client    *string         `json:"client"`
	Install   string          `json:"install"`
	NotifyAll json.RawMessage `json:"notifyAll"`
	Passenger json.RawMessage `json:"passenger"`
	Username  json.RawMessage `json:"username"`
	Phone     json.RawMessage `json:"phone"`
	OAuth     json.RawMessage `json:"oauth"`
}

// IsPassenger reports a passenger login: it takes precedence over every
// other mode (passenger > username > phone > oauth > client).
func (a *AuthObject) IsPassenger() bool { return !isNull(a.Passenger) }

// NeedsAccounts reports the login modes that need MaxLeap's account
// system (username, phone, oauth), which mqim refuses.
func (a *AuthObject) NeedsAccounts() bool {
	return !isNull(a.Username) || !isNull(a.Phone) || !isNull(a.OAuth)
}

// WantsNotifyAll reads the notifyAll flag leniently: true, "true" or 1.
func (a *AuthObject) WantsNotifyAll() bool {
	switch string(bytes.TrimSpace(a.NotifyAll)) {
	case "true", `"true"`, "1":
		return true
	}
	return false
}

// PassengerFields splits the passenger object into its id ("" when absent
// or null) and its other attributes. A passenger that is not an object is
// CodeInvalid with nil attributes; an id that is not a string is CodeInvalid
// with the attributes.
func (a *AuthObject) PassengerFields() (id string, attrs Attributes, err error) {
	attrs = Attributes{}
	if json.Unmarshal(a.Passenger, &attrs) != nil {
		return "", nil, Errorf(CodeInvalid, "passenger must be an object")
	}
	raw, ok := attrs["id"]
	delete(attrs, "id")
	if ok && !isNull(raw) && json.Unmarshal(raw, &id) != nil {
		return "", attrs, Errorf(CodeInvalid, "passenger.id must be a string")
	}
	return id, attrs, nil
}
