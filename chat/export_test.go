package chat

// StoreOf returns the store of s to the external tests, which append
// records directly; outside tests whoever opened the store holds it.
func StoreOf(s *Service) Store { return s.store }
