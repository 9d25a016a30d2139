// Placeholder entry point until the wiring lands in this same session.
int main() { return 0; }
