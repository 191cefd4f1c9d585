//! Settings that need MIT Kerberos (GSS-TSIG, LDAP binds, WinRM tickets) in a build that cannot
//! load it: a statically linked one (the musl release binary), where musl's `dlopen` always
//! fails. `validate` refuses them there, as the Windows build does, rather than let the run
//! fail at the first host.

/// Whether this kmsconf is statically linked with musl, and so cannot load MIT Kerberos: the
/// same test as the gssapi crate's `STATIC_BUILD`, whose load error says so at run time (the
/// model does not depend on that crate).
pub(super) const STATIC_BUILD: bool = cfg!(all(target_env = "musl", target_feature = "crt-static"));

/// The error of a setting (`what`) that needs MIT Kerberos in a static build, with what else
/// would do (`instead`, if anything).
pub(super) fn static_build_error(what: &str, instead: Option<&str>) -> String {
    let instead = instead.map(|i| format!("{i}, or ")).unwrap_or_default();
    format!("{what} needs MIT Kerberos, which this kmsconf cannot load: it is statically linked (the musl release binary), and a static program cannot load a shared library; {instead}use a kmsconf built for this system (`cargo install`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_build_says_what_to_use_instead() {
        assert_eq!(
            static_build_error("`gss_tsig`", None),
            "`gss_tsig` needs MIT Kerberos, which this kmsconf cannot load: it is statically linked (the musl release binary), and a static program cannot load a shared library; use a kmsconf built for this system (`cargo install`)"
        );
        assert!(
            static_build_error("a ticket", Some("add `password`")).ends_with(
                "; add `password`, or use a kmsconf built for this system (`cargo install`)"
            )
        );
    }
}
