"""Per target, the files it needs: pip resolves (or a lock says), and what builds each sdist is added."""
