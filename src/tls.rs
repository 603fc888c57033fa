//! TLS for outgoing connections (the SMS webhook, SMTP): rustls on the
//! `ring` provider, so nothing in the build needs a C toolchain or CMake.

/// Makes `ring` the process's rustls provider; later calls do nothing.
pub fn install_crypto_provider() {
    // Err only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
