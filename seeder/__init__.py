"""The seeder: serves and receives content-addressed chunks; stateless apart from the store."""
