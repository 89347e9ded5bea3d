"""Tier B of the coding-agent evaluation: micro-repos with hidden failing tests (`openk2 code bench`)."""
