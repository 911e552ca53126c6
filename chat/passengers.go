package chat

import "context"

// SavePassenger creates or updates a passenger (P1) and returns its id. An
// empty id creates a passenger with a new 32-hex id; an id that exists has
// attrs merged into its attributes; an unknown id is created with it.
// Returns CodeInvalid for a bad id and CodeTooLong for oversized attributes.
func (s *Service) SavePassenger(ctx context.Context, id string, attrs Attributes) (string, error) {
	if id == "" {
		id = NewGroupID()
	}
	if err := CheckID("passenger", id); err != nil {
		return "", err
	}
	clean, err := cleanAttrs(attrs)
	if err != nil {
		return "", err
	}
	now := s.nowMillis()
	err = s.store.Update(ctx, func(tx Tx) error {
		p, err := tx.Passenger(id)
		if IsNotFound(err) {
			p, err = &PassengerRecord{ID: id, Attributes: Attributes{}}, nil
		}
		if err != nil {
			return err
		}
		merged := emptyAttrsIfNil(p.Attributes).Clone()
		for k, v := range clean {
			merged[k] = v
		}
		if p.Attributes, err = sizedAttrs(merged); err != nil {
			return err
		}
		p.TS = now
		return tx.PutPassenger(p)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// Passenger returns passenger pid (P2). Returns CodeNotFound for an unknown
// passenger.
func (s *Service) Passenger(ctx context.Context, pid string) (*PassengerRecord, error) {
	if err := CheckID("passenger", pid); err != nil {
		return nil, err
	}
	var p *PassengerRecord
	err := s.store.View(ctx, func(tx Tx) error {
		var err error
		p, err = tx.Passenger(pid)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.Attributes = emptyAttrsIfNil(p.Attributes)
	return p, nil
}
