"""Where canonical requests are answered: the local session registry or an HTTP upstream."""
