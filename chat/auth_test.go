package chat

import (
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

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}
