package rest

import "github.com/gofiber/fiber/v2"

// routeSystem registers S1 and S2 (POST /system, POST /system/{target}).
func (s *Server) routeSystem(r fiber.Router) {}
