package token_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/token"
)

const secret = "0123456789abcdef-secret"

// Ensure a token reads back with its subject and times, and that forged,
// expired, foreign-secret, unsigned and subject-less tokens are refused.
func TestCodec(t *testing.T) {
	c, err := token.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_700_000_000_123)
	for _, id := range []chat.Identity{chat.User("alice"), chat.Passenger("p1")} {
		tok, err := c.Issue(chat.TokenClaims{Subject: id, IssuedAt: now, Expires: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Parse(tok, now.Add(time.Minute))
		if err != nil || got.Subject != id || !got.IssuedAt.Equal(now) || !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("Parse(%s) = %+v, %v", id, got, err)
		}
		if _, err := c.Parse(tok, now.Add(2*time.Hour)); err == nil {
			t.Errorf("expired token accepted")
		}
		if _, err := c.Parse(tok[:len(tok)-3]+"abc", now); err == nil {
			t.Errorf("forged signature accepted")
		}
	}
	other, _ := token.New("another-secret-of-16+")
	tok, _ := other.Issue(chat.TokenClaims{Subject: chat.User("alice"), IssuedAt: now, Expires: now.Add(time.Hour)})
	if _, err := c.Parse(tok, now); err == nil {
		t.Errorf("token of another secret accepted")
	}
	// An app backend's own token: integer NumericDates, HS256.
	own := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	s, _ := own.SignedString([]byte(secret))
	if got, err := c.Parse(s, now); err != nil || got.Subject != chat.User("bob") {
		t.Errorf("backend-minted token: %+v, %v", got, err)
	}
	for name, claims := range map[string]jwt.MapClaims{
		"no exp":            {"sub": "bob", "iat": now.Unix()},
		"no iat":            {"sub": "bob", "exp": now.Add(time.Hour).Unix()},
		"bad sub":           {"sub": "b b", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()},
		"no sub":            {"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()},
		"iat in the future": {"sub": "bob", "iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()},
	} {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if _, err := c.Parse(s, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "bob", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := c.Parse(none, now); err == nil {
		t.Errorf("alg none accepted")
	}
	if _, err := token.New("short"); err == nil || !strings.Contains(err.Error(), "16") {
		t.Errorf("short secret: %v", err)
	}
}
