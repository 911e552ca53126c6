package rest

import "github.com/gofiber/fiber/v2"

// routeAttachments registers A1 (POST /attachment) and A2 (GET /attachments/...).
func (s *Server) routeAttachments(r fiber.Router) {}
