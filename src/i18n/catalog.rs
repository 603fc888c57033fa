//! The message catalogs. Keys are stable; `{name}` marks a value filled in.

use super::Locale;

pub fn lookup(locale: Locale, key: &str) -> Option<&'static str> {
    let table = match locale {
        Locale::En => EN,
        Locale::Vi => VI,
    };
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

pub const EN: &[(&str, &str)] = &[
    ("ui.language", "Language"),
    ("ui.start.title", "Recover your account"),
    (
        "ui.start.intro",
        "Enter the email address of your account. We will send a 6-digit code to it.",
    ),
    ("ui.start.email", "Email address"),
    ("ui.start.submit", "Send code"),
    ("ui.code.title", "Enter your code"),
    (
        "ui.code.intro",
        "If an account uses this address, a 6-digit code is on its way. It expires in 15 minutes.",
    ),
    ("ui.code.code", "6-digit code"),
    ("ui.code.submit", "Verify"),
    ("ui.code.resend", "Didn't get a code? Send a new one"),
    ("ui.password.title", "Choose a new password"),
    (
        "ui.password.policy",
        "Use at least {min} characters. A few unrelated words make a strong passphrase that is easy to remember. It must not contain your email address.",
    ),
    ("ui.password.password", "New password"),
    ("ui.password.submit", "Set password"),
    ("ui.done.title", "Your password was changed"),
    (
        "ui.done.intro",
        "You can now sign in with your new password. Every other session was signed out.",
    ),
    ("ui.done.back", "Back to the application"),
    // AuthError messages, keyed by error code.
    ("error.invalid_request", "The request is invalid: {detail}"),
    ("error.invalid_email", "Enter a valid email address."),
    ("error.invalid_code_format", "The code must be exactly 6 digits."),
    (
        "error.invalid_login",
        "Enter an email address, a username or a phone number in international form (+84…).",
    ),
    (
        "error.unsupported_media_type",
        "Send the request body as JSON with Content-Type: application/json.",
    ),
    (
        "error.payload_too_large",
        "The request body is too large (16 KiB at most).",
    ),
    ("error.invalid_code", "Invalid or expired code."),
    (
        "error.recovery_session_missing",
        "No recovery is in progress. Start again to get a new code.",
    ),
    (
        "error.recovery_session_expired",
        "This recovery has expired. Start again to get a new code.",
    ),
    (
        "error.recovery_not_verified",
        "Verify the code from your message before setting a password.",
    ),
    (
        "error.too_many_attempts",
        "Too many wrong codes. Start again to get a new code.",
    ),
    (
        "error.rate_limited",
        "Recovery attempts exceeded. Try again in {minutes} minutes.",
    ),
    (
        "error.too_many_requests",
        "Too many requests. Try again in {seconds} seconds.",
    ),
    (
        "error.password_too_short",
        "The password must be at least {min} characters long.",
    ),
    (
        "error.password_too_long",
        "The password must be at most {max} bytes long.",
    ),
    (
        "error.password_too_weak",
        "This password is too easy to guess. Use a longer passphrase of unrelated words.",
    ),
    (
        "error.password_contains_identifier",
        "The password must not contain your email address or username.",
    ),
    ("error.password_mismatch", "The two passwords do not match."),
    ("error.invalid_credentials", "The login or password is incorrect."),
    (
        "error.unauthorized",
        "Sign in to continue: the session is missing, expired or revoked.",
    ),
    ("error.forbidden", "You are not allowed to do this."),
    ("error.not_found", "Not found."),
    ("error.account_not_found", "Account not found"),
    ("error.method_not_allowed", "This method is not allowed here."),
    ("error.conflict", "That {what} is already in use."),
    ("error.unavailable", "The service is not ready. Try again in a moment."),
    (
        "error.internal",
        "Something went wrong on our side. Try again in a moment.",
    ),
    // Messages the courier sends.
    ("mail.recovery_code.subject", "Your recovery code"),
    (
        "mail.recovery_code.body",
        "Hello,\n\nSomeone (hopefully you) asked to recover the account for this address.\n\nYour recovery code is: {code}\n\nIt expires in {minutes} minutes. If you did not ask for it, ignore this message: your password has not changed.\n",
    ),
    (
        "mail.unknown_recipient.body",
        "Hello,\n\nSomeone (hopefully you) asked to recover an account for this email address, but no account uses it.\n\nIf it was you, perhaps you signed up with another address. If it was not you, ignore this message.\n",
    ),
    ("mail.unknown_recipient.subject", "Account recovery request"),
    (
        "sms.recovery_code",
        "Your recovery code is {code}. It expires in {minutes} minutes. Do not share it with anyone.",
    ),
    (
        "sms.password_changed",
        "The password of your account was just changed. If this was not you, recover your account now.",
    ),
    ("mail.password_changed.subject", "Your password was changed"),
    (
        "mail.password_changed.body",
        "Hello,\n\nThe password of your account was just changed, and every other session was signed out.\n\nIf this was not you, recover your account now and contact support.\n",
    ),
];

pub const VI: &[(&str, &str)] = &[
    ("ui.language", "Ngôn ngữ"),
    ("ui.start.title", "Khôi phục tài khoản"),
    (
        "ui.start.intro",
        "Nhập địa chỉ email của tài khoản. Chúng tôi sẽ gửi một mã gồm 6 chữ số đến địa chỉ này.",
    ),
    ("ui.start.email", "Địa chỉ email"),
    ("ui.start.submit", "Gửi mã"),
    ("ui.code.title", "Nhập mã của bạn"),
    (
        "ui.code.intro",
        "Nếu có tài khoản dùng địa chỉ này, mã gồm 6 chữ số đang được gửi đến. Mã hết hạn sau 15 phút.",
    ),
    ("ui.code.code", "Mã gồm 6 chữ số"),
    ("ui.code.submit", "Xác minh"),
    ("ui.code.resend", "Chưa nhận được mã? Gửi mã mới"),
    ("ui.password.title", "Chọn mật khẩu mới"),
    (
        "ui.password.policy",
        "Dùng ít nhất {min} ký tự. Một vài từ không liên quan đến nhau sẽ tạo thành cụm mật khẩu mạnh và dễ nhớ. Mật khẩu không được chứa địa chỉ email của bạn.",
    ),
    ("ui.password.password", "Mật khẩu mới"),
    ("ui.password.submit", "Đặt mật khẩu"),
    ("ui.done.title", "Mật khẩu của bạn đã được thay đổi"),
    (
        "ui.done.intro",
        "Bây giờ bạn có thể đăng nhập bằng mật khẩu mới. Mọi phiên đăng nhập khác đã bị đăng xuất.",
    ),
    ("ui.done.back", "Quay lại ứng dụng"),
    ("error.invalid_request", "Yêu cầu không hợp lệ: {detail}"),
    ("error.invalid_email", "Vui lòng nhập địa chỉ email hợp lệ."),
    ("error.invalid_code_format", "Mã phải gồm đúng 6 chữ số."),
    (
        "error.invalid_login",
        "Vui lòng nhập địa chỉ email, tên đăng nhập hoặc số điện thoại theo định dạng quốc tế (+84…).",
    ),
    (
        "error.unsupported_media_type",
        "Hãy gửi nội dung yêu cầu dưới dạng JSON với Content-Type: application/json.",
    ),
    ("error.payload_too_large", "Nội dung yêu cầu quá lớn (tối đa 16 KiB)."),
    ("error.invalid_code", "Mã không hợp lệ hoặc đã hết hạn."),
    (
        "error.recovery_session_missing",
        "Không có yêu cầu khôi phục nào đang diễn ra. Hãy bắt đầu lại để nhận mã mới.",
    ),
    (
        "error.recovery_session_expired",
        "Yêu cầu khôi phục này đã hết hạn. Hãy bắt đầu lại để nhận mã mới.",
    ),
    (
        "error.recovery_not_verified",
        "Hãy xác minh mã trong tin nhắn trước khi đặt mật khẩu.",
    ),
    (
        "error.too_many_attempts",
        "Bạn đã nhập sai mã quá nhiều lần. Hãy bắt đầu lại để nhận mã mới.",
    ),
    (
        "error.rate_limited",
        "Đã vượt quá số lần yêu cầu khôi phục. Vui lòng thử lại sau {minutes} phút.",
    ),
    (
        "error.too_many_requests",
        "Có quá nhiều yêu cầu. Vui lòng thử lại sau {seconds} giây.",
    ),
    ("error.password_too_short", "Mật khẩu phải có ít nhất {min} ký tự."),
    ("error.password_too_long", "Mật khẩu không được dài quá {max} byte."),
    (
        "error.password_too_weak",
        "Mật khẩu này quá dễ đoán. Hãy dùng một cụm mật khẩu dài hơn gồm các từ không liên quan đến nhau.",
    ),
    (
        "error.password_contains_identifier",
        "Mật khẩu không được chứa địa chỉ email hoặc tên đăng nhập của bạn.",
    ),
    ("error.password_mismatch", "Hai mật khẩu không khớp nhau."),
    ("error.invalid_credentials", "Tên đăng nhập hoặc mật khẩu không đúng."),
    (
        "error.unauthorized",
        "Vui lòng đăng nhập để tiếp tục: phiên đăng nhập không có, đã hết hạn hoặc đã bị thu hồi.",
    ),
    ("error.forbidden", "Bạn không có quyền thực hiện thao tác này."),
    ("error.not_found", "Không tìm thấy."),
    ("error.account_not_found", "Không tìm thấy tài khoản"),
    ("error.method_not_allowed", "Phương thức này không được phép ở đây."),
    ("error.conflict", "{what} này đã được sử dụng."),
    (
        "error.unavailable",
        "Dịch vụ chưa sẵn sàng. Vui lòng thử lại sau ít phút.",
    ),
    (
        "error.internal",
        "Đã xảy ra lỗi từ phía chúng tôi. Vui lòng thử lại sau ít phút.",
    ),
    ("mail.recovery_code.subject", "Mã khôi phục của bạn"),
    (
        "mail.recovery_code.body",
        "Xin chào,\n\nCó người (hy vọng là bạn) đã yêu cầu khôi phục tài khoản gắn với địa chỉ này.\n\nMã khôi phục của bạn là: {code}\n\nMã sẽ hết hạn sau {minutes} phút. Nếu bạn không yêu cầu, hãy bỏ qua thư này: mật khẩu của bạn vẫn chưa thay đổi.\n",
    ),
    (
        "mail.unknown_recipient.body",
        "Xin chào,\n\nCó người (hy vọng là bạn) đã yêu cầu khôi phục tài khoản cho địa chỉ email này, nhưng không có tài khoản nào dùng địa chỉ này.\n\nNếu đó là bạn, có thể bạn đã đăng ký bằng một địa chỉ khác. Nếu không phải bạn, hãy bỏ qua thư này.\n",
    ),
    ("mail.unknown_recipient.subject", "Yêu cầu khôi phục tài khoản"),
    (
        "sms.recovery_code",
        "Mã khôi phục của bạn là {code}. Mã hết hạn sau {minutes} phút. Không chia sẻ mã này với bất kỳ ai.",
    ),
    (
        "sms.password_changed",
        "Mật khẩu tài khoản của bạn vừa được thay đổi. Nếu không phải bạn, hãy khôi phục tài khoản ngay.",
    ),
    ("mail.password_changed.subject", "Mật khẩu của bạn đã được thay đổi"),
    (
        "mail.password_changed.body",
        "Xin chào,\n\nMật khẩu tài khoản của bạn vừa được thay đổi, và mọi phiên đăng nhập khác đã bị đăng xuất.\n\nNếu không phải bạn thực hiện, hãy khôi phục tài khoản ngay và liên hệ bộ phận hỗ trợ.\n",
    ),
];
