package chat

import (
	"context"
	"fmt"
	"slices"
)

// MaxInstallLen bounds an installation id bound at login.
const MaxInstallLen = 256

// LoginRequest is a successful real-time login (docs/maxim.md §4.1),
// credentials already checked by the transport.
type LoginRequest struct {
	Identity Identity
	// Install is an installation id to bind to the user (push); empty for
	// none. Ignored for passengers.
	Install string
	// Attributes of a passenger login are merged into the passenger's
	// attributes ("id" excluded). Ignored for users.
	Attributes Attributes
}

// Login records the effects of a login on the store: a user that does not
// exist yet is created (a simple login creates users, docs/maxim.md §1.2)
// and install is bound to it, without duplicates; a passenger is created or
// its attributes merged. The live session itself is registered by
// SessionOpened once the transport has accepted the connection.
func (s *Service) Login(ctx context.Context, req LoginRequest) error {
	id := req.Identity
	if err := CheckID(id.Kind.String(), id.ID); err != nil {
		return err
	}
	if len(req.Install) > MaxInstallLen {
		return Errorf(CodeTooLong, "install id is longer than %d bytes", MaxInstallLen)
	}
	now := s.nowMillis()
	err := s.store.Update(ctx, func(tx Tx) error {
		switch id.Kind {
		case KindUser:
			u, err := tx.User(id.ID)
			switch {
			case IsNotFound(err):
				u = &UserRecord{ID: id.ID, Attributes: Attributes{}, Installs: []string{}, Created: now, TS: now}
			case err != nil:
				return err
			case req.Install == "" || slices.Contains(u.Installs, req.Install):
				return nil // nothing to change
			}
			if req.Install != "" && !slices.Contains(u.Installs, req.Install) {
				u.Installs = append(u.Installs, req.Install)
				u.TS = now
			}
			return tx.PutUser(u)
		case KindPassenger:
			p, err := tx.Passenger(id.ID)
			switch {
			case IsNotFound(err):
				p = &PassengerRecord{ID: id.ID, Attributes: Attributes{}, TS: now}
			case err != nil:
				return err
			case len(req.Attributes) == 0:
				return nil
			}
			if p.Attributes == nil {
				p.Attributes = Attributes{}
			}
			for k, v := range req.Attributes {
				if k != "id" {
					p.Attributes[k] = v
				}
			}
			return tx.PutPassenger(p)
		}
		return Errorf(CodeInvalid, "unknown identity kind")
	})
	if err != nil && ErrorCode(err) == CodeInternal {
		return fmt.Errorf("login %s: %w", id, err)
	}
	return err
}
