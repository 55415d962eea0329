//! CSP result codes (the `Result/Code` element), with the descriptions of CSP 1.3 and the CR.
//!
//! The set is closed: every code the protocol core can produce or must understand is a variant,
//! so a `match` on a code forces a decision for each one. Codes that arrive on the wire but are
//! not in this list decode to [`ResultCode::Other`].

use serde::{Deserialize, Serialize};

macro_rules! result_codes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $desc:literal; )*) => {
        /// A CSP result code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(into = "u16", from = "u16")]
        pub enum ResultCode {
            $( $(#[$doc])* $name, )*
            /// A code this implementation does not know; kept verbatim.
            Other(u16),
        }

        impl ResultCode {
            /// Every named code, in numeric order.
            pub const ALL: &'static [ResultCode] = &[$(ResultCode::$name,)*];

            /// The numeric value as it stands in `<Code>`.
            pub const fn number(self) -> u16 {
                match self {
                    $(ResultCode::$name => $num,)*
                    ResultCode::Other(n) => n,
                }
            }

            /// The code for a number (unknown numbers become [`ResultCode::Other`]).
            pub const fn from_number(n: u16) -> ResultCode {
                match n {
                    $($num => ResultCode::$name,)*
                    other => ResultCode::Other(other),
                }
            }

            /// The description of the code, as the CSP specification and the CR word it.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ResultCode::$name => $desc,)*
                    ResultCode::Other(_) => "Unknown result code.",
                }
            }
        }
    };
}

result_codes! {
    /// 200: the request succeeded.
    Success = 200, "Successful.";
    /// 401: in a 4-way login, the challenge ("Please complete authentication challenge").
    Unauthorized = 401, "Further authorization needed to use the server.";
    /// 403: the user is not allowed to use the server.
    Forbidden = 403, "The particular user is not allowed to use the server.";
    /// 409: invalid password.
    InvalidPassword = 409, "Invalid password.";
    /// 422: the Session-ID, User-ID and Client-ID of a recovery do not match.
    SessionUserClientMismatch = 422, "Session-ID, User-ID and Client-ID not matching.";
    /// 436: the server requires a response to its System Message(s).
    SystemMessageResponseRequired = 436, "System Message Response required.";
    /// 502: the server could not recover the session (CR 7.1.1).
    CouldNotRecoverSession = 502, "The server could not recover the session.";
    /// 503: service unavailable.
    ServiceUnavailable = 503, "Service unavailable.";
    /// 505: version not supported.
    VersionNotSupported = 505, "Version not supported.";
    /// 515: application forbidden by the operator.
    ApplicationForbidden = 515, "Application is forbidden by operator.";
    /// 531: unknown user.
    UnknownUser = 531, "Unknown user.";
    /// 543: no matching digest scheme.
    NoMatchingDigestScheme = 543, "No matching digest scheme supported.";
    /// 600: the session expired (Disconnect).
    SessionExpired = 600, "Session expired.";
    /// 601: forced logout (Disconnect).
    ForcedLogout = 601, "Forced logout.";
    /// 604: not logged in / invalid session.
    NotLoggedIn = 604, "Not logged in.";
    /// 606: some services are not available.
    SomeServicesNotAvailable = 606, "Some services are not available.";
    /// 607: too many non-conformant System Message replies.
    TooManyNonConformantReplies = 607, "Too many non-conformant System Message replies.";
    /// 608: the Client-ID is already in use by another session of the user (CR 11.4.7).
    ClientIdNotUnique = 608, "Client-ID is not unique.";
    /// 609: the SAP's session limit is reached.
    SapSessionLimit = 609, "SAP session limitation reached.";
    /// 610: the user's session limit is reached.
    UserSessionLimit = 610, "User session limitation reached.";
    /// 902: MSISDN error.
    MsisdnError = 902, "MSISDN error.";
    /// 903: registration confirmation.
    RegistrationConfirmation = 903, "Registration confirmation.";
    /// 907: service provider agreement missing.
    ServiceProviderAgreementMissing = 907, "Service provider agreement missing.";
}

impl ResultCode {
    /// Whether the code reports success (2xx).
    pub const fn is_success(self) -> bool {
        let n = self.number();
        n >= 200 && n < 300
    }
}

impl From<ResultCode> for u16 {
    fn from(c: ResultCode) -> u16 {
        c.number()
    }
}

impl From<u16> for ResultCode {
    fn from(n: u16) -> ResultCode {
        ResultCode::from_number(n)
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CR 11.4.7 and 7.1.2: every code the CR lists has its number and a description.
    #[test]
    fn result_codes_have_descriptions() {
        let required = [
            200, 401, 403, 409, 422, 436, 502, 503, 505, 515, 531, 543, 600, 601, 604, 606, 607,
            608, 609, 610, 902, 903, 907,
        ];
        for n in required {
            let c = ResultCode::from_number(n);
            assert!(
                !matches!(c, ResultCode::Other(_)),
                "{n} must be a named code"
            );
            assert_eq!(c.number(), n);
            assert_ne!(c.description(), ResultCode::Other(0).description());
        }
        assert_eq!(
            ResultCode::ClientIdNotUnique.description(),
            "Client-ID is not unique."
        );
        assert_eq!(ResultCode::from_number(777), ResultCode::Other(777));
        assert_eq!(ResultCode::ALL.len(), required.len());
    }
}
