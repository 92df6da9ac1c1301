//! `osdp_LSTAT`: command code 0x64, no data.

super::no_data_command!(
    /// Local status (tamper, power) request.
    LocalStatus,
    0x64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_no_data() {
        assert_eq!(CODE, 0x64);
        assert_eq!(LocalStatus::decode(&[]), Ok(LocalStatus));
        assert!(LocalStatus::decode(&[0]).is_err());
        assert!(LocalStatus.encode().is_empty());
    }
}
