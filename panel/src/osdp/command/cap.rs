//! `osdp_CAP`: command code 0x62, one byte (reply type, 0x00).

super::reply_type_command!(
    /// Capabilities request.
    Capabilities,
    0x62
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_of_reply_type() {
        assert_eq!(CODE, 0x62);
        assert_eq!(
            Capabilities::decode(&[0x00]),
            Ok(Capabilities { reply_type: 0 })
        );
        assert!(Capabilities::decode(&[]).is_err());
        assert_eq!(Capabilities { reply_type: 0 }.encode(), vec![0x00]);
    }
}
