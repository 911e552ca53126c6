package chat

import (
	"strings"
	"testing"
	"time"
)

// Ensure the golden vector of docs/maxim.md §2.1 signs and verifies.
func TestSign_GoldenVector(t *testing.T) {
	const key = "MjVvSjJUMTZveUR2d1hoNlVoQ0R1QQ"
	const want = "da1bb6b56200c84995127c784de90445,1461920236060"
	if got := Sign(key, 1461920236060); got != want {
		t.Fatalf("Sign() = %q, want %q", got, want)
	}
	a := &Authenticator{AppID: "569d84a0169e7d00012c7afe", Keys: []Key{{key, RoleClient}}}
	if role, err := a.VerifySign(want); err != nil || role != RoleClient {
		t.Fatalf("VerifySign(golden) = %v, %v; want client, nil", role, err)
	}
}

func TestAuthenticator_VerifySign(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	a := &Authenticator{
		AppID:     "app",
		Keys:      []Key{{"client-key", RoleClient}, {"master-key", RoleMaster}},
		Tolerance: 15 * time.Minute,
		Now:       func() time.Time { return now },
	}
	ms := now.UnixMilli()
	tests := []struct {
		desc  string
		value string
		role  Role
		ok    bool
	}{
		{"client sign", Sign("client-key", ms), RoleClient, true},
		{"master sign", Sign("master-key", ms), RoleMaster, true},
		{"uppercase digest", upper(Sign("client-key", ms)), RoleClient, true},
		{"raw client key", "client-key", RoleClient, true},
		{"raw master key", "master-key", RoleMaster, true},
		{"wrong key", Sign("other", ms), RoleNone, false},
		{"14 min old", Sign("client-key", ms-14*60_000), RoleClient, true},
		{"16 min old", Sign("client-key", ms-16*60_000), RoleNone, false},
		{"16 min future", Sign("client-key", ms+16*60_000), RoleNone, false},
		{"non-digit ts", "da1bb6b56200c84995127c784de90445,14619x", RoleNone, false},
		{"short digest", "abc,1461920236060", RoleNone, false},
		{"empty", "", RoleNone, false},
		{"comma only", ",", RoleNone, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			role, err := a.VerifySign(tt.value)
			if (err == nil) != tt.ok || role != tt.role {
				t.Fatalf("VerifySign(%q) = %v, %v; want %v, ok=%v", tt.value, role, err, tt.role, tt.ok)
			}
			if err != nil && ErrorCode(err) != CodeUnauthorized {
				t.Fatalf("code = %d, want %d", ErrorCode(err), CodeUnauthorized)
			}
		})
	}

	// Tolerance 0 accepts an old signature.
	a.Tolerance = 0
	if _, err := a.VerifySign(Sign("client-key", 1461920236060)); err != nil {
		t.Fatalf("tolerance 0: %v", err)
	}
}

// Ensure a signature refused because its timestamp is out of tolerance and
// looks like seconds says so; a millisecond one out of tolerance does not,
// and a seconds one is still refused (and still checked) when it is the
// only thing wrong.
func TestAuthenticator_SecondsHint(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	a := &Authenticator{Keys: []Key{{"client-key", RoleClient}}, Tolerance: 15 * time.Minute, Now: func() time.Time { return now }}
	for _, tc := range []struct {
		desc string
		ts   int64
		hint bool
	}{
		{"seconds now", now.Unix(), true},
		{"seconds, 1 digit short", now.Unix() / 10, true},
		{"11 digits", 99_999_999_999, true},
		{"milliseconds, 16 min old", now.UnixMilli() - 16*60_000, false},
		{"milliseconds of 1973", 100_000_000_000, false},
		{"microseconds", now.UnixMicro(), false},
	} {
		_, err := a.VerifySign(Sign("client-key", tc.ts))
		if err == nil || ErrorCode(err) != CodeUnauthorized {
			t.Fatalf("%s: err = %v, want a 5003 refusal", tc.desc, err)
		}
		if got := strings.Contains(ErrorMessage(err), SecondsHint); got != tc.hint {
			t.Errorf("%s: message %q, hint %v, want %v", tc.desc, ErrorMessage(err), got, tc.hint)
		}
	}
	if !strings.Contains(SecondsHint, "timestamp looks like seconds; MaxIM signatures use milliseconds") {
		t.Errorf("SecondsHint = %q", SecondsHint)
	}
	// A malformed or wrongly keyed signature gets no hint: the timestamp
	// is not the problem there.
	a.Tolerance = 0
	if _, err := a.VerifySign(Sign("other", now.Unix())); err == nil || strings.Contains(ErrorMessage(err), SecondsHint) {
		t.Errorf("tolerance 0, wrong key: %v", err)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}
