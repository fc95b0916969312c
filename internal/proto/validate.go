package proto

// Validate checks a manifest as a receiver must before it shows it (§4.1);
// stored manifests (§6.3) are checked by the same rules.
func (m *Manifest) Validate() error { return m.validate() }
