//! `osdp_ID`: command code 0x61, one byte (reply type, 0x00).

super::reply_type_command!(
    /// Identification report request.
    IdReport,
    0x61
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_of_reply_type() {
        assert_eq!(CODE, 0x61);
        assert_eq!(IdReport::decode(&[0x00]), Ok(IdReport { reply_type: 0 }));
        assert!(IdReport::decode(&[]).is_err());
        assert_eq!(IdReport { reply_type: 0 }.encode(), vec![0x00]);
    }
}
