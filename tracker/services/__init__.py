"""Write services of the tracker app: typed functions with keyword-only arguments."""
