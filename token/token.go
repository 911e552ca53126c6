// Package token is the adapter of chat.TokenCodec on JWTs signed with
// HMAC-SHA256 (github.com/golang-jwt/jwt/v5). The claims are documented in
// docs/maxim.md §2.4 so that an app backend can mint tokens itself:
//
//	header  {"alg":"HS256","typ":"JWT"}
//	payload {"sub":"alice","iat":1700000000.123,"exp":1702592000.123}
//
// sub is the user id, or passenger:<pid>; iat and exp are NumericDates
// (seconds, fractions allowed).
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/chat"
)

func init() {
	// iat with milliseconds: a revocation at T refuses tokens issued
	// before T, and a token minted right after T stays valid.
	jwt.TimePrecision = time.Millisecond
}

// Codec signs and checks tokens with one secret.
type Codec struct {
	secret []byte
}

var _ chat.TokenCodec = (*Codec)(nil)

// New returns a codec for secret, which must be at least 16 bytes.
func New(secret string) (*Codec, error) {
	if len(secret) < 16 {
		return nil, errors.New("token secret must be at least 16 bytes")
	}
	return &Codec{secret: []byte(secret)}, nil
}

// Issue implements chat.TokenCodec.
func (c *Codec) Issue(cl chat.TokenClaims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   chat.TokenSubject(cl.Subject),
		IssuedAt:  jwt.NewNumericDate(cl.IssuedAt),
		ExpiresAt: jwt.NewNumericDate(cl.Expires),
	})
	return t.SignedString(c.secret)
}

// Parse implements chat.TokenCodec: HS256 only, exp and iat required.
func (c *Codec) Parse(s string, now time.Time) (chat.TokenClaims, error) {
	mc := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(s, mc, func(*jwt.Token) (any, error) { return c.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithJSONNumber(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return chat.TokenClaims{}, err
	}
	sub, _ := mc["sub"].(string)
	id, ok := chat.ParseTokenSubject(sub)
	if !ok {
		return chat.TokenClaims{}, errors.New("token sub is not a user id or passenger:<id>")
	}
	iat, err := millis(mc["iat"])
	if err != nil {
		return chat.TokenClaims{}, fmt.Errorf("token iat: %w", err)
	}
	exp, err := millis(mc["exp"])
	if err != nil {
		return chat.TokenClaims{}, fmt.Errorf("token exp: %w", err)
	}
	return chat.TokenClaims{Subject: id, IssuedAt: time.UnixMilli(iat), Expires: time.UnixMilli(exp)}, nil
}

// millis reads a NumericDate exactly to the millisecond: through a float,
// 1700000000.123 would read back as .122999.
func millis(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("missing or not a number")
	}
	whole, frac, _ := strings.Cut(n.String(), ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec < 0 || sec > 1<<40 {
		return 0, errors.New("not a time in seconds")
	}
	frac = (frac + "000")[:3]
	ms, err := strconv.Atoi(frac)
	if err != nil {
		return 0, errors.New("not a time in seconds")
	}
	return sec*1000 + int64(ms), nil
}
