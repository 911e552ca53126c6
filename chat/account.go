package chat

import (
	"context"
	"fmt"
)

// Account is the access state of one identity (docs/maxim.md §2.5): when
// its tokens were last revoked and whether it is banned. It is kept apart
// from the user context so that erasing a user does not bring its old
// tokens back to life.
type Account struct {
	// ID is Identity.String().
	ID string `json:"id"`
	// NotBefore (ms): tokens issued at or before it are refused; 0: none.
	NotBefore int64 `json:"nbf,omitempty"`
	Ban       *Ban  `json:"ban,omitempty"`
}

// Ban refuses logins and token calls until Until (ms; 0: for ever).
type Ban struct {
	Until  int64  `json:"until"`
	Reason string `json:"reason,omitempty"`
	TS     int64  `json:"ts"`
}

// active reports whether b is in force at now (ms).
func (b *Ban) active(now int64) bool { return b != nil && (b.Until == 0 || b.Until > now) }

// BannedError refuses a banned identity: code 5003, REST 403, CONNACK
// 0x8A (MQTT 3.1.1: 5).
type BannedError struct {
	Ban Ban
}

func (e *BannedError) Error() string { return e.err().Error() }

// Unwrap makes ErrorCode see 5003.
func (e *BannedError) Unwrap() error { return e.err() }

func (e *BannedError) err() *Error {
	msg := "banned"
	if e.Ban.Until > 0 {
		msg = fmt.Sprintf("banned until %d", e.Ban.Until)
	}
	if e.Ban.Reason != "" {
		msg += ": " + e.Ban.Reason
	}
	return &Error{Code: CodeUnauthorized, Message: msg}
}

// KickCause says why sessions are disconnected.
type KickCause uint8

const (
	// KickAdmin is POST /ctx/{uid}/kick.
	KickAdmin KickCause = iota + 1
	// KickBanned is a ban.
	KickBanned
	// KickRevoked is a token revocation: only sessions that logged in
	// with a token issued before NotBefore are disconnected.
	KickRevoked
	// KickErased is an erasure: the live sessions are disconnected, and
	// every persistent session of the identity, connected or not, is
	// removed with its queued events.
	KickErased
)

// Connections is the real-time layer's control over live sessions
// (hooks implements it).
type Connections interface {
	// Disconnect ends the live sessions of id (MQTT 5: DISCONNECT 0x98)
	// and returns how many. With KickRevoked, only the sessions that logged
	// in with a token issued at or before notBefore (ms). With KickErased,
	// it also removes id's persistent sessions and their queued events,
	// from memory and from the store, before it returns.
	Disconnect(id Identity, cause KickCause, notBefore int64) int
	// Live is the number of open connections of id (for the per-identity
	// connection cap across real-time layers).
	Live(id Identity) int
}

// MultiConnections is the Connections of several real-time layers (MQTT
// and socket.io): Disconnect reaches each in turn and returns the total.
type MultiConnections []Connections

// Disconnect implements Connections.
func (m MultiConnections) Disconnect(id Identity, cause KickCause, notBefore int64) int {
	n := 0
	for _, c := range m {
		if c != nil {
			n += c.Disconnect(id, cause, notBefore)
		}
	}
	return n
}

// Live implements Connections: the sum over the layers.
func (m MultiConnections) Live(id Identity) int {
	n := 0
	for _, c := range m {
		if c != nil {
			n += c.Live(id)
		}
	}
	return n
}

// Account returns the access state of id (an empty one when none is
// stored).
func (s *Service) Account(ctx context.Context, id Identity) (*Account, error) {
	var a *Account
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		a, err = accountOf(tx, id)
		return err
	})
	return a, err
}

func accountOf(tx Tx, id Identity) (*Account, error) {
	a, err := tx.Account(id.String())
	if IsNotFound(err) {
		return &Account{ID: id.String()}, nil
	}
	return a, err
}

// checkBan returns a *BannedError when a's ban is in force.
func (s *Service) checkBan(a *Account) error {
	if a.Ban.active(s.nowMillis()) {
		return &BannedError{Ban: *a.Ban}
	}
	return nil
}

// CheckLogin refuses a login of a banned identity.
func (s *Service) CheckLogin(ctx context.Context, id Identity) error {
	a, err := s.Account(ctx, id)
	if err != nil {
		return err
	}
	return s.checkBan(a)
}

func (s *Service) updateAccount(ctx context.Context, id Identity, fn func(a *Account)) error {
	if err := CheckID(id.Kind.String(), id.ID); err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx Tx) error {
		a, err := accountOf(tx, id)
		if err != nil {
			return err
		}
		fn(a)
		return tx.PutAccount(a)
	})
}

// RevokeTokens refuses every token of id issued up to now (ms) and
// disconnects the sessions that logged in with one. It returns how many.
func (s *Service) RevokeTokens(ctx context.Context, id Identity) (int, error) {
	now := s.nowMillis()
	if err := s.updateAccount(ctx, id, func(a *Account) { a.NotBefore = now }); err != nil {
		return 0, err
	}
	return s.disconnect(id, KickRevoked, now), nil
}

// Kick disconnects every live session of id and returns how many.
func (s *Service) Kick(_ context.Context, id Identity) (int, error) {
	if err := CheckID(id.Kind.String(), id.ID); err != nil {
		return 0, err
	}
	return s.disconnect(id, KickAdmin, 0), nil
}

// BanIdentity bans id until until (ms; 0: for ever) and disconnects its
// sessions.
func (s *Service) BanIdentity(ctx context.Context, id Identity, until int64, reason string) (*Ban, error) {
	if until < 0 {
		return nil, Errorf(CodeInvalid, "until must be a time in ms, or 0 for ever")
	}
	if len(reason) > 1024 {
		return nil, Errorf(CodeTooLong, "reason is longer than 1024 bytes")
	}
	b := &Ban{Until: until, Reason: reason, TS: s.nowMillis()}
	if err := s.updateAccount(ctx, id, func(a *Account) { a.Ban = b }); err != nil {
		return nil, err
	}
	s.disconnect(id, KickBanned, 0)
	return b, nil
}

// Unban lifts the ban of id, if any.
func (s *Service) Unban(ctx context.Context, id Identity) error {
	return s.updateAccount(ctx, id, func(a *Account) { a.Ban = nil })
}

// ActiveBan returns the ban of id in force now, or nil.
func (s *Service) ActiveBan(ctx context.Context, id Identity) (*Ban, error) {
	a, err := s.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	if !a.Ban.active(s.nowMillis()) {
		return nil, nil
	}
	return a.Ban, nil
}

func (s *Service) disconnect(id Identity, cause KickCause, notBefore int64) int {
	if s.Connections == nil {
		return 0
	}
	return s.Connections.Disconnect(id, cause, notBefore)
}
