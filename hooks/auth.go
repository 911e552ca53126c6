package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/metrics"
)

// refusal is how a CONNECT is refused: the MQTT 5 reason code and the
// MQTT 3.1.1 return code. mochi's own v5→v3 table maps 0x86 to "not
// authorized" and has no entry for 0x87, so the hook writes the CONNACK
// itself.
type refusal struct {
	v5 packets.Code
	v3 byte
}

var (
	refuseBadCredentials = refusal{packets.ErrBadUsernameOrPassword, 4} // bad user name or password
	refuseNotAuthorized  = refusal{packets.ErrNotAuthorized, 5}         // not authorized
	refuseUnavailable    = refusal{packets.ErrServerUnavailable, 3}     // server unavailable
	// refuseQuota is the per-identity connection cap: 3.1.1 has no quota
	// code; "not authorized" tells the client not to retry blindly, where
	// "server unavailable" would invite a reconnect loop.
	refuseQuota = refusal{packets.ErrQuotaExceeded, 5}
	// refuseKeepalive is for MQTT 3.1.1 only: "identifier rejected", the
	// code mosquitto uses for a keepalive above its max_keepalive.
	refuseKeepalive = refusal{packets.ErrClientIdentifierNotValid, 2}
	// refuseBanned is a banned identity (docs/maxim.md §2.5).
	refuseBanned = refusal{packets.ErrBanned, 5}
	// refuseThrottled is an address past the failed-login limit
	// (docs/maxim.md §2.7): 3.1.1 "server unavailable", 5 quota exceeded.
	refuseThrottled = refusal{packets.ErrQuotaExceeded, 3}
)

// Auth is the login hook (docs/protocol.md §2). In OnConnect it checks the
// CONNECT: no will; Username a user id or passenger:<id>; Password a MaxIM
// signature or auth object; the keepalive within bounds; the client id not
// bound to another identity. It then records the login (chat.Service.Login)
// and binds the client id. A refusal gets its CONNACK from here and the
// connection is closed.
type Auth struct {
	mqtt.HookBase
	reg  *registry
	opts Options
	srv  *mqtt.Server
}

var _ broker.Aborter = (*Auth)(nil)

// ID implements mqtt.Hook.
func (h *Auth) ID() string { return "mqim-auth" }

// Provides implements mqtt.Hook.
func (h *Auth) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnDisconnect, mqtt.OnClientExpired:
		return true
	}
	return false
}

// OnConnectAuthenticate implements mqtt.Hook: a connection is authenticated
// when its OnConnect login claimed the client id.
func (h *Auth) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.reg.authenticated(cl)
}

// OnConnect implements mqtt.Hook. It runs before mochi's authentication
// step, which can only answer "bad user name or password"; refusing here
// lets the CONNACK say "not authorized" where that is the reason.
func (h *Auth) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	log := h.opts.Log.With().Str("client", cl.ID).Str("remote", cl.Net.Remote).Logger()
	if pk.Connect.WillFlag {
		// Wills would publish as the client without passing through Say,
		// and mochi does not check them against the ACL (mochi#503).
		return h.refuse(cl, refuseNotAuthorized, "will messages are not accepted", log)
	}
	ip := remoteIP(cl.Net.Remote)
	if h.opts.Throttle != nil && !h.opts.Throttle.Allow(ip) {
		return h.refuse(cl, refuseThrottled, "too many failed logins from this address: try again in a minute", log)
	}
	ctx, cancel := context.WithTimeout(h.opts.BaseContext, h.opts.Timeout)
	defer cancel()
	req, notifyAll, ref, err := h.credentials(ctx, string(pk.Connect.Username), pk.Connect.Password)
	if err != nil {
		if ref == refuseBadCredentials && h.opts.Throttle != nil {
			h.opts.Throttle.Fail(ip)
		}
		return h.refuse(cl, ref, err.Error(), log)
	}
	log = log.With().Str("identity", req.Identity.String()).Logger()
	if req.tokenIAT == 0 {
		// A token's check includes the ban; a key login checks it here.
		if err := h.opts.Service.CheckLogin(ctx, req.Identity); err != nil {
			if chat.IsBanned(err) {
				return h.refuse(cl, refuseBanned, chat.ErrorMessage(err), log)
			}
			log.Error().Err(err).Msg("login check failed")
			return h.refuse(cl, refuseUnavailable, "login failed", log)
		}
	}
	if ref, ok := h.keepalive(cl); !ok {
		return h.refuse(cl, ref, "keepalive must be between the server's minimum and maximum", log)
	}
	if s := h.reg.sessions; s != nil {
		// In a cluster, a persistent session another node holds comes
		// here first (Sessions.adopt), so that mochi hands it over.
		if err := s.adopt(ctx, cl, req.Identity, pk.Connect.Clean); errors.Is(err, errClientIDTaken) {
			return h.refuse(cl, connRefusal(err), err.Error(), log)
		} else if err != nil {
			log.Error().Err(err).Msg("persistent session not read from the store")
			return h.refuse(cl, refuseUnavailable, "login failed", log)
		}
	}
	if err := h.reg.check(cl.ID, req.Identity); err != nil {
		return h.refuse(cl, connRefusal(err), err.Error(), log)
	}
	if err := h.opts.Service.Login(ctx, req.LoginRequest); err != nil {
		if chat.ErrorCode(err) == chat.CodeInternal {
			log.Error().Err(err).Msg("login failed")
			return h.refuse(cl, refuseUnavailable, "login failed", log)
		}
		return h.refuse(cl, refuseBadCredentials, chat.ErrorMessage(err), log)
	}
	if err := h.reg.claim(cl, req.Identity, notifyAll, req.tokenIAT); err != nil {
		return h.refuse(cl, connRefusal(err), err.Error(), log)
	}
	log.Debug().Msg("login accepted")
	h.opts.Metrics.Login(metrics.MQTT, metrics.OK)
	return nil
}

// connRefusal is the refusal of a registry error.
func connRefusal(err error) refusal {
	if errors.Is(err, errTooManyConnections) {
		return refuseQuota
	}
	return refuseNotAuthorized
}

// refuse writes the CONNACK of a refused CONNECT and returns the error that
// makes mochi close the connection.
func (h *Auth) refuse(cl *mqtt.Client, r refusal, reason string, log zerolog.Logger) error {
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}}
	if cl.Properties.ProtocolVersion == 5 {
		ack.ReasonCode = r.v5.Code
		ack.Properties.ReasonString = reason
	} else {
		ack.ReasonCode = r.v3
	}
	if err := cl.WritePacket(ack); err != nil {
		log.Debug().Err(err).Msg("connack not written")
	}
	log.Info().Str("reason", reason).Uint8("code", ack.ReasonCode).Msg("connect refused")
	h.opts.Metrics.Login(metrics.MQTT, r.outcome())
	return r.v5
}

// outcome is the metrics outcome of a refused login.
func (r refusal) outcome() string {
	switch r {
	case refuseBadCredentials:
		return metrics.Unauthorized
	case refuseBanned:
		return metrics.Banned
	case refuseThrottled:
		return metrics.Throttled
	case refuseUnavailable:
		return metrics.Error
	}
	return metrics.Refused // not authorized, keepalive, will, connection cap
}

// keepalive applies the keepalive policy (see Options). ok is false when an
// MQTT 3.1.1 client must be refused.
func (h *Auth) keepalive(cl *mqtt.Client) (refusal, bool) {
	lo := uint16(min(h.opts.MinKeepalive/time.Second, math.MaxUint16))
	hi := uint16(min(h.opts.MaxKeepalive/time.Second, math.MaxUint16))
	ka := cl.State.Keepalive
	if cl.Properties.ProtocolVersion == 5 {
		switch {
		case ka == 0 || ka > hi:
			ka = hi
		case ka < lo:
			ka = lo
		default:
			return refusal{}, true
		}
		// Sent back as Server Keep Alive in the CONNACK; the client must use it.
		cl.State.Keepalive = ka
		cl.State.ServerKeepalive = true
		return refusal{}, true
	}
	if ka == 0 || ka > hi {
		return refuseKeepalive, false
	}
	if ka < lo {
		// The client pings more often than needed; the server's deadline
		// is simply more patient.
		cl.State.Keepalive = lo
	}
	return refusal{}, true
}

// errUnsupportedMode refuses the login modes that need a MaxLeap account
// system.
var errUnsupportedMode = errors.New("login mode not supported: no account provider is configured")

// login is a checked CONNECT: the login to record and, for a token login,
// when the token was issued (ms; 0 for a key login).
type login struct {
	chat.LoginRequest
	tokenIAT int64
}

// looksLikeToken reports whether a password is a JWT (three base64url
// parts, the first a JSON object): a MaxIM signature is hex,ts and an auth
// object starts with '{'.
func looksLikeToken(pw []byte) bool {
	return bytes.HasPrefix(pw, []byte("eyJ")) && bytes.Count(pw, []byte(".")) == 2
}

// credentials checks Username and Password and returns the login to record.
// On failure, ref says how to refuse.
func (h *Auth) credentials(ctx context.Context, username string, password []byte) (lg login, notifyAll bool, ref refusal, err error) {
	id, ok := broker.ParseUsername(username)
	if !ok {
		return lg, false, refuseBadCredentials, errors.New("username must be a user id or passenger:<id>")
	}
	lg.Identity = id
	pw := bytes.TrimSpace(password)
	if len(pw) == 0 {
		return lg, false, refuseBadCredentials, errors.New("password required")
	}
	if looksLikeToken(pw) {
		c, err := h.opts.Service.VerifyToken(ctx, string(pw), &id)
		switch {
		case chat.IsBanned(err):
			return lg, false, refuseBanned, errors.New(chat.ErrorMessage(err))
		case chat.ErrorCode(err) == chat.CodeInternal:
			return lg, false, refuseUnavailable, errors.New("login failed")
		case err != nil:
			return lg, false, refuseBadCredentials, errors.New(chat.ErrorMessage(err))
		}
		lg.tokenIAT = max(c.IssuedAt.UnixMilli(), 1)
		return lg, false, refusal{}, nil
	}
	req := &lg.LoginRequest
	sign := string(pw)
	if pw[0] == '{' {
		var a chat.AuthObject
		if err := json.Unmarshal(pw, &a); err != nil {
			return lg, false, refuseBadCredentials, errors.New("malformed auth object")
		}
		if a.App == nil || !h.opts.Auth.CheckApp(*a.App) {
			return lg, false, refuseBadCredentials, errors.New("unknown app")
		}
		sign = a.Sign
		// Precedence of docs/maxim.md §4.1: passenger > username > phone >
		// oauth > client.
		switch {
		case a.IsPassenger():
			if id.Kind != chat.KindPassenger {
				return lg, false, refuseNotAuthorized, errors.New("a passenger login needs the username passenger:<id>")
			}
			pid, attrs, err := a.PassengerFields()
			if attrs == nil {
				return lg, false, refuseBadCredentials, errors.New(chat.ErrorMessage(err))
			}
			if err != nil || (pid != "" && pid != id.ID) {
				return lg, false, refuseNotAuthorized, errors.New("passenger.id does not match the username")
			}
			req.Attributes = attrs
		case a.NeedsAccounts():
			return lg, false, refuseNotAuthorized, errUnsupportedMode
		default:
			if id.Kind != chat.KindUser {
				return lg, false, refuseNotAuthorized, errors.New("a passenger login needs the passenger object")
			}
			if a.Client != nil && *a.Client != id.ID {
				return lg, false, refuseNotAuthorized, errors.New("client does not match the username")
			}
			req.Install = a.Install
			notifyAll = a.WantsNotifyAll()
		}
	}
	if !h.opts.AllowRawKey && !strings.Contains(sign, ",") {
		return lg, false, refuseBadCredentials, errors.New("a signature md5(ts+key),ts is required")
	}
	role, err := h.opts.Auth.VerifySign(sign)
	if err != nil {
		return lg, false, refuseBadCredentials, errors.New(chat.ErrorMessage(err))
	}
	if role == chat.RoleClient && h.opts.NoClientKey {
		return lg, false, refuseBadCredentials, errors.New("the client key is not accepted: log in with a token")
	}
	return lg, notifyAll, refusal{}, nil
}

// OnDisconnect implements mqtt.Hook: a session that ends with its
// connection frees its client id; the persistent session of an erased
// identity is removed (Presence, before, has let go of it; Sessions,
// after, finds it gone and stores nothing).
func (h *Auth) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	switch {
	case takenOver(cl):
		// Taken over here, a newer connection holds the binding (release
		// changes nothing). Taken over by another node, the binding goes
		// with the session: one that ends, or that this node gave up
		// (Sessions.GiveUp); a session mochi still holds keeps it.
		if cur, ok := h.srv.Clients.Get(cl.ID); expire || !ok || cur != cl {
			h.reg.release(cl)
		}
	case expire:
		h.reg.release(cl)
	case h.reg.erasing(cl):
		h.reg.eraseSession(cl)
	}
}

// OnClientExpired implements mqtt.Hook: an expired persistent session frees
// its client id.
func (h *Auth) OnClientExpired(cl *mqtt.Client) { h.reg.release(cl) }

// Abort implements broker.Aborter.
func (h *Auth) Abort(cl *mqtt.Client) {
	if sessionExpires(cl) {
		h.reg.release(cl)
	}
}

// remoteIP is the address part of a remote "host:port" (the whole
// string when it has no port).
func remoteIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
