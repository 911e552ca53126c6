package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
)

// Ensure the MQTT login parser (Username plus a signature or a MaxIM auth
// object as Password) never panics, refuses with one of the CONNACK
// refusals, and accepts only a valid signature of this app for the
// identity named by Username.
//
// `go test` runs the seeds; `go test -run '^$' -fuzz FuzzCredentials
// -fuzztime 60s ./hooks` explores further.
func FuzzCredentials(f *testing.F) {
	now := time.UnixMilli(1_700_000_000_000)
	const app, key = "app1", "client-key"
	auth := &chat.Authenticator{AppID: app, Tolerance: 15 * time.Minute, Now: func() time.Time { return now },
		Keys: []chat.Key{{Value: key, Role: chat.RoleClient}}}
	sig := chat.Sign(key, now.UnixMilli())
	for _, s := range [][2]string{
		{"bob", sig},
		{"bob", " " + sig + "\n"},
		{"bob", key},
		{"bob", `{"app":"app1","sign":"` + sig + `","client":"bob","install":"i1","notifyAll":true}`},
		{"bob", `{"app":"app1","sign":"` + sig + `","client":"alice"}`},
		{"bob", `{"app":"app2","sign":"` + sig + `"}`},
		{"bob", `{"app":"app1","sign":"` + sig + `","username":"x","password":"y"}`},
		{"passenger:p1", `{"app":"app1","sign":"` + sig + `","passenger":{"id":"p1","name":"P"}}`},
		{"passenger:p1", `{"app":"app1","sign":"` + sig + `","passenger":{"id":"p2"}}`},
		{"passenger:p1", `{"app":"app1","sign":"` + sig + `","passenger":[1]}`},
		{"passenger:p1", sig},
		{"b+b", sig}, {"", sig}, {"bob", ""}, {"bob", "{"}, {"bob", `{"app":null}`},
		{"bob", `{"app":"app1","sign":{"x":1},"notifyAll":"true"}`},
	} {
		f.Add(s[0], []byte(s[1]), false)
	}
	f.Fuzz(func(t *testing.T, username string, password []byte, allowRaw bool) {
		h := &Auth{opts: Options{Auth: auth, AllowRawKey: allowRaw, Service: chat.NewService(nil, chat.Options{})}}
		req, _, ref, err := h.credentials(context.Background(), username, password)
		if err != nil {
			switch ref {
			case refuseBadCredentials, refuseNotAuthorized:
			default:
				t.Fatalf("refusal %+v for %v", ref, err)
			}
			return
		}
		id, ok := broker.ParseUsername(username)
		if !ok || req.Identity != id {
			t.Fatalf("username %q logged in as %v", username, req.Identity)
		}
		// The signature that was checked: the password, or the auth
		// object's sign of this app.
		pw := bytes.TrimSpace(password)
		sign := string(pw)
		if pw[0] == '{' {
			var a struct {
				App  string `json:"app"`
				Sign string `json:"sign"`
			}
			if json.Unmarshal(pw, &a) != nil || a.App != app {
				t.Fatalf("auth object %q accepted", pw)
			}
			sign = a.Sign
		}
		if _, err := auth.VerifySign(sign); err != nil {
			t.Fatalf("password %q accepted: %v", password, err)
		}
		if !allowRaw && !strings.Contains(sign, ",") {
			t.Fatalf("raw key %q accepted", sign)
		}
		if id.Kind == chat.KindPassenger && req.Attributes["id"] != nil {
			t.Fatal("passenger attributes keep id")
		}
	})
}
