package chat

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Role is what a key may do.
type Role int

const (
	// RoleNone means not authenticated.
	RoleNone Role = iota
	// RoleClient is any app key but the master key.
	RoleClient
	// RoleMaster is the master key: admin endpoints in strict mode.
	RoleMaster
)

// Key is one key of the app.
type Key struct {
	Value string
	Role  Role
}

// Authenticator checks MaxIM credentials (docs/maxim.md §2.1) for the one
// app this server hosts.
type Authenticator struct {
	AppID string
	Keys  []Key
	// Tolerance is how far a signature's timestamp may be from now, in both
	// directions. 0 turns the check off (legacy clients reuse one signature).
	Tolerance time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SecondsHint ends the refusal of a signature whose timestamp is out of
// tolerance and looks like Unix seconds: a common mistake (date +%s, PHP
// time(), Python int(time.time())) that otherwise reads like clock skew.
const SecondsHint = "timestamp looks like seconds; MaxIM signatures use milliseconds"

// secondsBound: a timestamp below it (11 digits or fewer) is taken for
// seconds. 1e11 ms is March 1973, 1e11 s the year 5138.
const secondsBound = 100_000_000_000

// Sign returns the MaxIM signature of ts with key: md5hex(ts+key) + "," + ts.
func Sign(key string, tsMillis int64) string {
	ts := strconv.FormatInt(tsMillis, 10)
	sum := md5.Sum([]byte(ts + key))
	return hex.EncodeToString(sum[:]) + "," + ts
}

// CheckApp reports whether appID is this server's app, in constant time.
func (a *Authenticator) CheckApp(appID string) bool {
	return subtle.ConstantTimeCompare([]byte(appID), []byte(a.AppID)) == 1
}

// VerifySign checks a sign value: "md5,ts" (signed) or, without a comma, a
// raw key. It returns the role of the key that matched, or an error with
// CodeUnauthorized.
func (a *Authenticator) VerifySign(value string) (Role, error) {
	i := strings.LastIndexByte(value, ',')
	if i < 0 {
		return a.VerifyKey(value)
	}
	digest, ts := value[:i], value[i+1:]
	if len(ts) == 0 || len(ts) > 19 || !allDigits(ts) || len(digest) != 32 {
		return RoleNone, Errorf(CodeUnauthorized, "malformed signature")
	}
	want, err := hex.DecodeString(strings.ToLower(digest))
	if err != nil {
		return RoleNone, Errorf(CodeUnauthorized, "malformed signature")
	}
	if a.Tolerance > 0 {
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return RoleNone, Errorf(CodeUnauthorized, "malformed signature")
		}
		now := a.now().UnixMilli()
		d := now - ms
		if d < 0 {
			d = -d
		}
		if d > a.Tolerance.Milliseconds() {
			if ms < secondsBound {
				return RoleNone, Errorf(CodeUnauthorized, "signature expired or from the future: %s", SecondsHint)
			}
			return RoleNone, Errorf(CodeUnauthorized, "signature expired or from the future")
		}
	}
	role := RoleNone
	for _, k := range a.Keys {
		sum := md5.Sum([]byte(ts + k.Value))
		// Compare every key so timing does not tell which key matched.
		if subtle.ConstantTimeCompare(sum[:], want) == 1 && role == RoleNone {
			role = k.Role
		}
	}
	if role == RoleNone {
		return RoleNone, Errorf(CodeUnauthorized, "bad signature")
	}
	return role, nil
}

// VerifyKey checks a raw, unsigned key (X-ML-APIKey, X-ML-MasterKey, or a
// comma-less X-ML-Request-Sign).
func (a *Authenticator) VerifyKey(raw string) (Role, error) {
	role := RoleNone
	for _, k := range a.Keys {
		if subtle.ConstantTimeCompare([]byte(raw), []byte(k.Value)) == 1 && role == RoleNone {
			role = k.Role
		}
	}
	if role == RoleNone || raw == "" {
		return RoleNone, Errorf(CodeUnauthorized, "bad key")
	}
	return role, nil
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
