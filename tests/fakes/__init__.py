"""Local stand-ins for outside services, speaking their wire protocols (docs/architecture.md, "Testing")."""
