package socketio

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/mqim/mqim/chat"
)

// login is a checked auth object.
type login struct {
	req       chat.LoginRequest
	notifyAll bool
	token     bool // a token login: the ban was checked with the token
	// tokenIAT is the issue time (ms, at least 1) of a token login's
	// token, for revocations; 0 for a signed login.
	tokenIAT int64
}

// authQuery returns the auth value of the Engine.IO handshake URL
// (socket.io-client 1.x sends it only there) or, for socket.io 2.x
// clients, of the namespace CONNECT.
func authQuery(sock *socket.Socket) string {
	h := sock.Handshake()
	if v, ok := h.Query["auth"]; ok {
		switch q := v.(type) {
		case []string:
			if len(q) > 0 {
				return q[0]
			}
		case string:
			return q
		}
	}
	if v, ok := h.Auth["auth"]; ok {
		switch a := v.(type) {
		case string:
			return a
		default:
			b, _ := json.Marshal(a)
			return string(b)
		}
	}
	return ""
}

// decodeAuth parses the auth JSON leniently: the client query-encodes it,
// and some encode it twice (or encode a space as +).
func decodeAuth(raw string) (chat.AuthObject, bool) {
	var a chat.AuthObject
	for range 3 {
		s := strings.TrimSpace(raw)
		if strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), &a) == nil {
			return a, true
		}
		u, err := url.QueryUnescape(s)
		if err != nil || u == s {
			return a, false
		}
		raw = u
	}
	return a, false
}

// credentials checks the auth JSON and returns the login to record.
// Errors carry the MaxIM code of the login event: 5001 malformed, 5003
// bad app, signature or token, 5009 a login mode needing an account
// provider.
func (s *Server) credentials(ctx context.Context, raw string) (login, error) {
	var lg login
	a, ok := decodeAuth(raw)
	if !ok {
		return lg, chat.Errorf(chat.CodeInvalid, "missing or malformed auth")
	}
	svc := s.opts.Service
	if a.Token != "" {
		c, err := svc.VerifyToken(ctx, a.Token, nil)
		if err != nil {
			return lg, err
		}
		lg.req.Identity, lg.token = c.Subject, true
		lg.tokenIAT = max(c.IssuedAt.UnixMilli(), 1)
		if c.Subject.Kind == chat.KindUser {
			lg.req.Install = a.Install
			lg.notifyAll = a.WantsNotifyAll()
		}
		return lg, nil
	}
	if a.App == nil || !s.opts.Auth.CheckApp(*a.App) {
		return lg, chat.Errorf(chat.CodeUnauthorized, "unknown app")
	}
	// Precedence of docs/maxim.md §4.1: passenger > username > phone >
	// oauth > client.
	switch {
	case a.IsPassenger():
		pid, attrs, err := a.PassengerFields()
		if err != nil {
			return lg, err
		}
		if pid == "" {
			pid = chat.RandomHex(16)
		}
		lg.req.Identity = chat.Passenger(pid)
		lg.req.Attributes = attrs
	case a.NeedsAccounts():
		return lg, chat.Errorf(chat.CodeUnsupported, "login mode not supported: no account provider is configured")
	case a.Client != nil && *a.Client != "":
		lg.req.Identity = chat.User(*a.Client)
		lg.req.Install = a.Install
		lg.notifyAll = a.WantsNotifyAll()
	default:
		return lg, chat.Errorf(chat.CodeInvalid, "auth needs client, passenger or token")
	}
	if err := chat.CheckID(lg.req.Identity.Kind.String(), lg.req.Identity.ID); err != nil {
		return lg, err
	}
	if !strings.Contains(a.Sign, ",") {
		return lg, chat.Errorf(chat.CodeUnauthorized, "a signature md5(ts+key),ts is required")
	}
	role, err := s.opts.Auth.VerifySign(a.Sign)
	if err != nil {
		return lg, err
	}
	if role == chat.RoleClient && s.opts.NoClientKey {
		return lg, chat.Errorf(chat.CodeUnauthorized, "the client key is not accepted: log in with a token")
	}
	return lg, nil
}
