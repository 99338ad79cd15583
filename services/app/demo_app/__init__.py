"""demo_app — see services/app/README.md."""
