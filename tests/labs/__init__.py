"""Workshop labs executed as tests, and the local pod runner behind `make local`."""
