//! What each operation is, for access decisions: the part of a user record it touches, whether
//! it changes it, whether a policy may grant it at all, and what a user's own token may do.

use super::policy::Part;

/// How an operation is judged for a caller bound by policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The part of a user record it touches (`Part::None`: no user record).
    pub part: Part,
    /// It changes what it touches (a write needs the whole part in view: masking is for reads).
    pub writes: bool,
    /// The handler loads the user it concerns, which is then judged as that record
    /// ([`super::judge::admit`]); otherwise the whole decision is made before the handler runs.
    pub per_record: bool,
    /// What it answers of the record is the profile (masked when the view is partial); any
    /// other operation needs the whole part in view.
    pub maskable: bool,
}

/// Reads whose answer shows the record only through its (masked) profile.
const MASKABLE: &[&str] = &[
    "UserGet",
    "UserListVersions",
    "UserSearch",
    "BulkListUsers",
    "BulkListAllUsers",
    "BulkListGroupUsers",
    "SharedRecordCreate",
];

/// Operations no policy grants: they mint credentials or change who may do what, so a role
/// token holding them could raise its own rights. Only administrators call them.
pub const ADMIN_ONLY: &[&str] = &[
    "TenantCreate",
    "TenantUpdate",
    "TenantDelete",
    "TenantListTenants",
    "TenantGet",
    "RoleCreate",
    "RoleUpdate",
    "RoleDelete",
    "RoleLinkPolicy",
    "PolicyCreate",
    "PolicyUpdate",
    "PolicyDelete",
    "XTokenCreateForRole",
    // A user's token sees its own record whole: minting one would lift any role's masking.
    "XTokenCreateForUser",
    "SystemGenerateWrappingKey",
    "SystemRotateMasterKey",
    "SystemGetMasterKeyStatus",
    "SystemRotateRecoveryKey",
    // Vault-wide: every tenant's profiles.
    "SystemGetUserProfiles",
    "SystemSearchUserProfiles",
    "SystemDeleteUserProfiles",
    "SystemRestoreUserProfile",
    // The vault's record counts (the main tenant's administrator), or the tenant's.
    "SystemGetSystemStats",
    "SystemSetLicenseKey",
    // An event's details hold whole profiles (a change's before and after), which no view masks.
    "AuditGetEvent",
    // Walks every event of the tenant.
    "AuditVerify",
    "PolicySimulate",
    "PolicyListEffectivePermissions",
    // Administrator accounts act as roles or as the tenant's administrator: managing them is
    // handing out rights.
    "AccountCreate",
    "AccountGet",
    "AccountList",
    "AccountUpdate",
    "AccountDelete",
];

/// What a user's own token may do on its own record without any policy: read it and ask for
/// changes (a `*Request` waits for an administrator's approval).
pub const USER_OWN: &[&str] = &[
    "UserGet",
    "UserListVersions",
    "UserDeleteRequest",
    "UserUpdateRequest",
    "UserPatchRequest",
    "AppdataGet",
    "AppdataListUserAppNames",
    "AppdataListVersions",
    "AppdataUpdateRequest",
    "AgreementGet",
    "AgreementListUserAgreements",
    "AgreementAccept",
    "AgreementCancelRequest",
    "UserRequestListUserRequests",
    "UserRequestGet",
    "UserRequestCancel",
    "SessionListUserSessions",
    "SessionGet",
    "FileGet",
    "FileListUserFiles",
    "GroupListUserGroups",
    "AuditListUserEvents",
    "SystemGetUserReport",
    "SystemGetUserHTMLReport",
    "SharedRecordCreate",
];

/// Never with a user's own token, whatever its roles' policies say: the contract's list of
/// direct changes a data subject must request instead.
pub const USER_NEVER: &[&str] = &["UserDelete", "UserUpdate", "UserPatch", "AppdataUpdate", "AgreementCancel"];

/// The kind of an operation.
pub fn kind(operation: &str) -> Kind {
    let maskable = MASKABLE.contains(&operation);
    let record = |part, writes| Kind { part, writes, per_record: true, maskable };
    let whole = |part, writes| Kind { part, writes, per_record: false, maskable };
    match operation {
        "UserGet"
        | "UserListVersions"
        | "UserSearch"
        | "BulkListUsers"
        | "BulkListAllUsers"
        | "BulkListGroupUsers"
        | "SystemGetUserReport"
        | "SystemGetUserHTMLReport"
        | "SharedRecordCreate"
        | "AuditListUserEvents"
        | "UserRequestListUserRequests"
        | "UserRequestGet"
        | "ConnectorGetUserData"
        | "ConnectorGetUserExtraData" => record(Part::Profile, false),
        "UserUpdate"
        | "UserPatch"
        | "UserDelete"
        | "UserDeleteRequest"
        | "UserUpdateRequest"
        | "UserPatchRequest"
        | "UserRequestApprove"
        | "UserRequestCancel"
        | "ConnectorDeleteUser" => record(Part::Profile, true),
        "UserCreate" | "UserCreateBulk" | "UserDeleteBulk" => whole(Part::Profile, true),
        "AppdataGet" | "AppdataListUserAppNames" | "AppdataListVersions" => record(Part::Appdata, false),
        "AppdataCreate" | "AppdataUpdate" | "AppdataUpdateRequest" | "AppdataDelete" => record(Part::Appdata, true),
        "AgreementGet" | "AgreementListUserAgreements" => record(Part::Agreement, false),
        "AgreementAccept" | "AgreementCancel" | "AgreementCancelRequest" => record(Part::Agreement, true),
        "SessionGet" | "SessionListUserSessions" => record(Part::Session, false),
        "SessionUpsert" | "SessionDelete" => record(Part::Session, true),
        "FileGet" | "FileListUserFiles" => record(Part::File, false),
        "FileCreate" | "FileDelete" | "FileReplaceTags" => record(Part::File, true),
        "GroupListUserGroups" => record(Part::Group, false),
        "GroupAddUser" | "GroupDeleteUser" => record(Part::Group, true),
        _ => whole(Part::None, !is_read_only(operation)),
    }
}

/// Operations that change nothing (by their name, as the API names them).
fn is_read_only(operation: &str) -> bool {
    ["Get", "List", "Search"].iter().any(|verb| operation.contains(verb)) || operation == "BulkListUnlock"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_token_never_holds_what_it_must_request() {
        for op in USER_NEVER {
            assert!(!USER_OWN.contains(op), "{op}");
            assert!(kind(op).writes, "{op}");
        }
        for op in USER_OWN {
            assert!(kind(op).per_record, "{op}: a user's own operations concern its record");
        }
    }

    #[test]
    fn only_reads_that_show_the_profile_are_maskable() {
        for op in MASKABLE {
            assert!(!kind(op).writes, "{op}");
        }
        assert!(!kind("UserRequestGet").maskable, "a request's change holds profile values");
    }

    #[test]
    fn reads_and_writes_are_told_apart() {
        assert!(!kind("UserGet").writes);
        assert!(kind("UserUpdate").writes);
        assert!(!kind("TokenGet").writes);
        assert!(kind("TokenCreate").writes);
        assert_eq!(kind("TokenCreate").part, Part::None);
        assert!(!kind("LegalBasisListAgreements").writes);
    }
}
