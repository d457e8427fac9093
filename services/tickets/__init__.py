"""TicketsAgent: IT helpdesk tickets over A2A, stored in SQLite."""
