//! `osdp_POLL`: command code 0x60, no data.

super::no_data_command!(
    /// Anything to report?.
    Poll,
    0x60
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_no_data() {
        assert_eq!(CODE, 0x60);
        assert_eq!(Poll::decode(&[]), Ok(Poll));
        assert!(Poll::decode(&[0]).is_err());
        assert!(Poll.encode().is_empty());
    }
}
