package chat

import (
	"context"
	"errors"
	"strings"
	"time"
)

// DefaultTokenTTL is the lifetime of a minted token when none is asked for.
const DefaultTokenTTL = 720 * time.Hour

// TokenClaims are what a token says (docs/maxim.md §2.4): who it is for and
// when it was issued and expires.
type TokenClaims struct {
	Subject  Identity
	IssuedAt time.Time
	Expires  time.Time
}

// TokenCodec mints and checks login tokens. The token package implements
// it with signed JWTs; chat only needs the claims.
type TokenCodec interface {
	// Issue returns a token for c.
	Issue(c TokenClaims) (string, error)
	// Parse checks the token's signature and expiry at now and returns its
	// claims. Any failure is an error; the caller reports it as 5003.
	Parse(token string, now time.Time) (TokenClaims, error)
}

// TokenSubject is the sub claim of id: the user id, or passenger:<pid>.
func TokenSubject(id Identity) string {
	if id.Kind == KindPassenger {
		return "passenger:" + id.ID
	}
	return id.ID
}

// ParseTokenSubject reads a sub claim back into an identity.
func ParseTokenSubject(sub string) (Identity, bool) {
	if pid, ok := strings.CutPrefix(sub, "passenger:"); ok {
		if CheckID("passenger", pid) != nil {
			return Identity{}, false
		}
		return Passenger(pid), true
	}
	if CheckID("user", sub) != nil {
		return Identity{}, false
	}
	return User(sub), true
}

// errNoTokens is returned when the server has no token codec.
var errNoTokens = Errorf(CodeUnsupported, "tokens are not configured")

// IssueToken mints a token for id valid for ttl (≤ 0: DefaultTokenTTL, or
// the service's TokenTTL). It returns the token and its expiry in ms.
func (s *Service) IssueToken(id Identity, ttl time.Duration) (string, int64, error) {
	if s.Tokens == nil {
		return "", 0, errNoTokens
	}
	if err := CheckID(id.Kind.String(), id.ID); err != nil {
		return "", 0, err
	}
	if ttl <= 0 {
		ttl = s.TokenTTL
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	now := s.Now()
	exp := now.Add(ttl)
	tok, err := s.Tokens.Issue(TokenClaims{Subject: id, IssuedAt: now, Expires: exp})
	if err != nil {
		return "", 0, err
	}
	return tok, exp.UnixMilli(), nil
}

// VerifyToken checks a token: signature, expiry, that it was issued after
// the identity's last revocation, and that the identity is not banned.
// want, when not nil, is the identity the caller claims (the MQTT
// Username): the token's subject must be it. Failures are 5003; a ban is a
// *BannedError (also 5003).
func (s *Service) VerifyToken(ctx context.Context, token string, want *Identity) (TokenClaims, error) {
	if s.Tokens == nil {
		return TokenClaims{}, errNoTokens
	}
	c, err := s.Tokens.Parse(token, s.Now())
	if err != nil {
		return TokenClaims{}, Errorf(CodeUnauthorized, "invalid token")
	}
	if want != nil && c.Subject != *want {
		return TokenClaims{}, Errorf(CodeUnauthorized, "the token is for another identity")
	}
	acc, err := s.Account(ctx, c.Subject)
	if err != nil {
		return TokenClaims{}, err
	}
	if acc.NotBefore > 0 && c.IssuedAt.UnixMilli() <= acc.NotBefore {
		return TokenClaims{}, Errorf(CodeUnauthorized, "token revoked")
	}
	if err := s.checkBan(acc); err != nil {
		return TokenClaims{}, err
	}
	return c, nil
}

// IsBanned reports whether err is (or wraps) a *BannedError.
func IsBanned(err error) bool {
	var b *BannedError
	return errors.As(err, &b)
}
