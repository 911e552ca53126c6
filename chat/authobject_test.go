package chat_test

import (
	"encoding/json"
	"testing"

	"github.com/mqim/mqim/chat"
)

// Ensure the auth object's rules, shared by the MQTT and socket.io logins:
// passenger precedence, the account-system modes, the lenient notifyAll and
// the passenger object split into id and attributes.
func TestAuthObject(t *testing.T) {
	parse := func(s string) chat.AuthObject {
		t.Helper()
		var a chat.AuthObject
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		in                      string
		passenger, accounts, na bool
	}{
		{`{"client":"a"}`, false, false, false},
		{`{"client":"a","notifyAll":true}`, false, false, true},
		{`{"client":"a","notifyAll":"true"}`, false, false, true},
		{`{"client":"a","notifyAll":1}`, false, false, true},
		{`{"client":"a","notifyAll":false}`, false, false, false},
		{`{"passenger":null,"phone":"1"}`, false, true, false},
		{`{"passenger":{},"username":"u"}`, true, true, false},
		{`{"oauth":{}}`, false, true, false},
	} {
		a := parse(tc.in)
		if a.IsPassenger() != tc.passenger || a.NeedsAccounts() != tc.accounts || a.WantsNotifyAll() != tc.na {
			t.Errorf("%s: passenger %v accounts %v notifyAll %v", tc.in, a.IsPassenger(), a.NeedsAccounts(), a.WantsNotifyAll())
		}
	}

	a := parse(`{"passenger":{"id":"p1","name":"v"}}`)
	if id, attrs, err := a.PassengerFields(); err != nil || id != "p1" || len(attrs) != 1 || attrs["id"] != nil {
		t.Errorf("PassengerFields = %q, %v, %v", id, attrs, err)
	}
	a = parse(`{"passenger":{"id":null}}`)
	if id, attrs, err := a.PassengerFields(); err != nil || id != "" || len(attrs) != 0 {
		t.Errorf("null id: %q, %v, %v", id, attrs, err)
	}
	a = parse(`{"passenger":{"id":7}}`)
	if _, attrs, err := a.PassengerFields(); chat.ErrorCode(err) != chat.CodeInvalid || attrs == nil {
		t.Errorf("numeric id: %v, %v; want CodeInvalid with attributes", attrs, err)
	}
	a = parse(`{"passenger":"p1"}`)
	if _, attrs, err := a.PassengerFields(); chat.ErrorCode(err) != chat.CodeInvalid || attrs != nil {
		t.Errorf("string passenger: %v, %v; want CodeInvalid without attributes", attrs, err)
	}
}
