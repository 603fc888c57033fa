//! Vietnamese for the OpenAPI document: each English `summary` or
//! `description` the code carries, and its translation. A unit test fails
//! when the document gains a text that is missing here.

pub const TEXTS: &[(&str, &str)] = &[
    // Tags and document.
    (
        "Account recovery and authentication API.",
        "API khôi phục và xác thực tài khoản.",
    ),
    (
        "Account authentication and password recovery.",
        "Xác thực tài khoản và khôi phục mật khẩu.",
    ),
    (
        "Health and latency endpoints.",
        "Các endpoint về tình trạng hoạt động và độ trễ.",
    ),
    ("Token logout", "Đăng xuất bằng token"),
    (
        "Revokes the refresh token's whole family and its session (RFC 7009 style). An unknown, spent or revoked token gets the same answer.",
        "Thu hồi toàn bộ chuỗi token làm mới và phiên gắn với chuỗi đó (theo kiểu RFC 7009). Token không xác định, đã dùng hoặc đã bị thu hồi đều nhận cùng một phản hồi.",
    ),
    (
        "Refresh family and session revoked",
        "Đã thu hồi chuỗi token làm mới và phiên",
    ),
    (
        "Request to revoke a refresh token.",
        "Yêu cầu thu hồi một token làm mới.",
    ),
    (
        "Any string: an unknown, spent or malformed token is answered like a live one.",
        "Chuỗi bất kỳ: token không xác định, đã dùng hoặc sai định dạng được trả lời như token còn hiệu lực.",
    ),
    (
        "Too many password checks queued; try again after Retry-After",
        "Quá nhiều yêu cầu kiểm tra mật khẩu đang chờ; vui lòng thử lại sau Retry-After",
    ),
    // Schemas (the seed's wording where the seed has one).
    ("AuthError schema.", "Lược đồ AuthError."),
    (
        "Machine-readable error code or error category.",
        "Mã lỗi hoặc nhóm lỗi dành cho máy đọc.",
    ),
    ("Human-readable error message.", "Thông báo lỗi dành cho người đọc."),
    ("Status value returned by the API.", "Giá trị trạng thái do API trả về."),
    (
        "Account identity returned by the authenticated session.",
        "Danh tính tài khoản do phiên đã xác thực trả về.",
    ),
    (
        "Unique identifier for the record.",
        "Mã định danh duy nhất của bản ghi.",
    ),
    (
        "Account attributes returned with the authenticated session.",
        "Các thuộc tính tài khoản trả về cùng phiên đã xác thực.",
    ),
    (
        "Request to sign in with a login and a password.",
        "Yêu cầu đăng nhập bằng tài khoản (email, số điện thoại hoặc tên đăng nhập) và mật khẩu.",
    ),
    ("Email address or username.", "Địa chỉ email hoặc tên đăng nhập."),
    ("AuthLoginResponse schema.", "Lược đồ AuthLoginResponse."),
    (
        "Bearer JWT returned for REST API calls.",
        "Bearer JWT trả về để gọi REST API.",
    ),
    (
        "Session token returned after authentication. Store it securely for session refresh and logout.",
        "Token phiên trả về sau khi xác thực. Vui lòng lưu trữ an toàn để làm mới phiên và đăng xuất.",
    ),
    (
        "Request to set a new password after recovery-code verification.",
        "Yêu cầu đặt mật khẩu mới sau khi xác minh mã khôi phục.",
    ),
    ("New password for the account.", "Mật khẩu mới của tài khoản."),
    (
        "Request to send a one-time password-recovery code.",
        "Yêu cầu gửi mã khôi phục mật khẩu dùng một lần.",
    ),
    (
        "Email address associated with the account.",
        "Địa chỉ email liên kết với tài khoản.",
    ),
    ("Password-recovery status.", "Trạng thái khôi phục mật khẩu."),
    (
        "`code_sent` after start, `verified` after verify.",
        "`code_sent` sau bước bắt đầu, `verified` sau bước xác minh.",
    ),
    (
        "Request to verify a one-time password-recovery code.",
        "Yêu cầu xác minh mã khôi phục mật khẩu dùng một lần.",
    ),
    (
        "Start of the window, Unix nanoseconds (default: an hour before `to_ns`).",
        "Đầu khoảng thời gian, tính bằng nano giây Unix (mặc định: một giờ trước `to_ns`).",
    ),
    (
        "End of the window, Unix nanoseconds (default: now).",
        "Cuối khoảng thời gian, tính bằng nano giây Unix (mặc định: hiện tại).",
    ),
    (
        "Width of one bucket of the series, nanoseconds (default: one minute).",
        "Độ rộng của một khoảng trong chuỗi, tính bằng nano giây (mặc định: một phút).",
    ),
    (
        "The 6-digit code from the recovery message.",
        "Mã khôi phục gồm 6 chữ số đã gửi cho bạn.",
    ),
    (
        "Session object. The `tokenized` field is the Bearer JWT used for API calls.",
        "Đối tượng phiên. Trường `tokenized` là Bearer JWT dùng để gọi API.",
    ),
    (
        "Indicates whether the session is active.",
        "Cho biết phiên có đang hoạt động hay không.",
    ),
    (
        "Timestamp when the session was authenticated.",
        "Thời điểm phiên được xác thực.",
    ),
    (
        "Devices associated with the authenticated session.",
        "Các thiết bị gắn với phiên đã xác thực.",
    ),
    ("Timestamp when the session expires.", "Thời điểm phiên hết hạn."),
    (
        "Bearer JWT issued for REST API calls.",
        "Bearer JWT được cấp để gọi REST API.",
    ),
    ("AuthSessionDevice schema.", "Lược đồ AuthSessionDevice."),
    (
        "IP address reported for the session device.",
        "Địa chỉ IP ghi nhận cho thiết bị của phiên.",
    ),
    (
        "User agent reported for the session device.",
        "User agent ghi nhận cho thiết bị của phiên.",
    ),
    (
        "Request naming a session by its session token.",
        "Yêu cầu chỉ định một phiên bằng token phiên.",
    ),
    (
        "Session token returned after authentication.",
        "Token phiên trả về sau khi xác thực.",
    ),
    (
        "Request to confirm a recovery with the token, the code and a new password.",
        "Yêu cầu xác nhận khôi phục bằng token, mã và mật khẩu mới.",
    ),
    (
        "Request to start a token-bound recovery.",
        "Yêu cầu bắt đầu khôi phục gắn với token.",
    ),
    (
        "Email address, username or phone number of the account.",
        "Địa chỉ email, tên đăng nhập hoặc số điện thoại của tài khoản.",
    ),
    ("Recovery token.", "Token khôi phục."),
    (
        "One-time token for password reset, valid for {recovery_lifespan} (`recovery.lifespan`; {sms_lifespan} when the code went by SMS, `recovery.sms_lifespan`).",
        "Token dùng một lần để đặt lại mật khẩu, có hiệu lực trong {recovery_lifespan} (`recovery.lifespan`; {sms_lifespan} nếu mã được gửi qua SMS, `recovery.sms_lifespan`).",
    ),
    (
        "Request to sign in and receive a token pair.",
        "Yêu cầu đăng nhập và nhận một cặp token.",
    ),
    ("Access and refresh tokens.", "Token truy cập và token làm mới."),
    // Operations.
    ("Start password recovery", "Bắt đầu khôi phục mật khẩu"),
    (
        "Sends a one-time recovery code to the account email address and creates a short-lived recovery session. Preserve the response cookie for the verify and reset requests.",
        "Gửi mã khôi phục dùng một lần đến email của tài khoản và tạo phiên khôi phục ngắn hạn. Lưu cookie trong phản hồi để gửi cùng các yêu cầu xác minh và đặt lại mật khẩu.",
    ),
    (
        "Recovery code accepted for delivery",
        "Yêu cầu gửi mã khôi phục đã được chấp nhận",
    ),
    (
        "Short-lived recovery session cookie required by the next recovery request.",
        "Cookie phiên khôi phục ngắn hạn bắt buộc cho yêu cầu khôi phục tiếp theo.",
    ),
    ("Verify the recovery code", "Xác minh mã khôi phục"),
    (
        "Checks the one-time code sent by the start request. Send the recovery session cookie; a successful response rotates it.",
        "Kiểm tra mã dùng một lần do yêu cầu bắt đầu gửi đi. Gửi kèm cookie phiên khôi phục; phản hồi thành công sẽ thay cookie mới.",
    ),
    ("Code verified", "Mã đã được xác minh"),
    (
        "No, unknown or expired recovery session",
        "Không có phiên khôi phục, phiên không xác định hoặc đã hết hạn",
    ),
    ("Too many wrong codes", "Nhập sai mã quá nhiều lần"),
    ("Reset recovered password", "Đặt lại mật khẩu đã khôi phục"),
    (
        "Sets the new account password after code verification. Send the recovery session cookie returned by the verify request. A successful response also returns an authenticated session.",
        "Đặt mật khẩu mới sau khi xác minh mã. Gửi cookie phiên khôi phục do yêu cầu xác minh trả về. Phản hồi thành công cũng trả về phiên đã xác thực.",
    ),
    (
        "Password reset and active session",
        "Mật khẩu đã được đặt lại và phiên đang hoạt động",
    ),
    (
        "No, unknown, expired or unverified recovery session",
        "Không có phiên khôi phục, phiên không xác định, đã hết hạn hoặc chưa được xác minh",
    ),
    ("Sign in", "Đăng nhập"),
    (
        "Checks a login and password and returns an authenticated session. An unknown account and a wrong password get the same answer.",
        "Kiểm tra tài khoản (email, số điện thoại hoặc tên đăng nhập) và mật khẩu rồi trả về phiên đã xác thực. Tài khoản không tồn tại và mật khẩu sai đều nhận cùng một phản hồi.",
    ),
    ("Active session", "Phiên đang hoạt động"),
    ("Wrong login or password", "Tài khoản hoặc mật khẩu không đúng"),
    ("Current session", "Phiên hiện tại"),
    (
        "Returns the session of a Bearer JWT or an X-Session-Token.",
        "Trả về phiên của một Bearer JWT hoặc một `X-Session-Token`.",
    ),
    (
        "Session token, instead of a Bearer JWT.",
        "Token phiên, thay cho Bearer JWT.",
    ),
    (
        "Missing, expired or revoked session",
        "Phiên không tồn tại, đã hết hạn hoặc đã bị thu hồi",
    ),
    ("Refresh session JWT", "Làm mới JWT của phiên"),
    (
        "Returns a new Bearer JWT for an active session.",
        "Trả về một Bearer JWT mới cho phiên đang hoạt động.",
    ),
    ("Active session with a new JWT", "Phiên đang hoạt động với JWT mới"),
    ("Sign out", "Đăng xuất"),
    (
        "Revokes the session; its JWTs stop working at once.",
        "Thu hồi phiên; các JWT của phiên ngừng hoạt động ngay lập tức.",
    ),
    ("Session revoked", "Phiên đã bị thu hồi"),
    ("Signing keys", "Khóa ký"),
    (
        "The public keys (JWKS) that verify every JWT latchkey issues.",
        "Các khóa công khai (JWKS) dùng để xác minh mọi JWT do latchkey cấp.",
    ),
    ("JSON Web Key Set", "Bộ khóa JSON Web Key Set"),
    ("Recovery access request", "Yêu cầu khôi phục tài khoản"),
    (
        "Sends a 6-digit recovery code to the verified email or phone of the account and returns a one-time token for the confirm request.",
        "Gửi mã khôi phục gồm 6 chữ số đến email hoặc số điện thoại đã xác minh của tài khoản và trả về token dùng một lần cho yêu cầu xác nhận.",
    ),
    ("Recovery token", "Token khôi phục"),
    (
        "Account not found (only with reveal_unknown_accounts)",
        "Không tìm thấy tài khoản (chỉ khi bật `recovery.reveal_unknown_accounts`)",
    ),
    ("Recovery attempts exceeded", "Đã vượt quá số lần yêu cầu khôi phục"),
    ("Recovery confirm", "Xác nhận khôi phục"),
    (
        "Checks the token and the code, sets the new password and returns a token pair.",
        "Kiểm tra token và mã, đặt mật khẩu mới rồi trả về một cặp token.",
    ),
    ("Password reset; token pair", "Mật khẩu đã được đặt lại; cặp token"),
    (
        "Unknown, used or expired token",
        "Token không xác định, đã dùng hoặc đã hết hạn",
    ),
    ("Token login", "Đăng nhập (nhận cặp token)"),
    (
        "Checks a login and password and returns a token pair.",
        "Kiểm tra tài khoản (email, số điện thoại hoặc tên đăng nhập) và mật khẩu rồi trả về một cặp token.",
    ),
    ("Token pair", "Cặp token"),
    ("Refresh tokens", "Làm mới token"),
    (
        "Spends a refresh token for a new token pair. Presenting a spent refresh token revokes its whole family.",
        "Dùng một token làm mới để lấy cặp token mới. Gửi lại một token làm mới đã dùng sẽ thu hồi toàn bộ chuỗi token của nó.",
    ),
    ("The refresh token to spend.", "Token làm mới cần dùng."),
    ("New token pair", "Cặp token mới"),
    (
        "Unknown, spent or revoked refresh token",
        "Token làm mới không xác định, đã dùng hoặc đã bị thu hồi",
    ),
    ("Liveness", "Tình trạng hoạt động"),
    ("Answers while the process runs.", "Phản hồi khi tiến trình đang chạy."),
    ("The process is up", "Tiến trình đang chạy"),
    ("Readiness", "Trạng thái sẵn sàng"),
    (
        "Answers when the database and the courier's transport are reachable.",
        "Phản hồi khi kết nối được cơ sở dữ liệu và kênh gửi tin của courier.",
    ),
    ("Ready", "Sẵn sàng"),
    ("A dependency is unavailable", "Một thành phần phụ thuộc không khả dụng"),
    ("Prometheus metrics", "Số liệu Prometheus"),
    (
        "Request counts and latency histograms per route, recovery and courier counters, outbox depth.",
        "Số lượng yêu cầu và biểu đồ độ trễ theo từng route, các bộ đếm khôi phục và courier, độ sâu hàng đợi outbox.",
    ),
    ("Prometheus text exposition", "Định dạng văn bản Prometheus"),
    ("Internal error", "Lỗi nội bộ"),
    ("Request latency metrics", "Số liệu độ trễ yêu cầu"),
    (
        "Count, min, max, average, p50, p95, p99 and a time-bucketed series of this server's request latencies per route. Requires the admin role.",
        "Số lượng, giá trị nhỏ nhất, lớn nhất, trung bình, p50, p95, p99 và chuỗi theo khoảng thời gian của độ trễ yêu cầu trên máy chủ này, theo từng route. Yêu cầu vai trò admin.",
    ),
    ("Latency statistics per route", "Thống kê độ trễ theo từng route"),
    ("Invalid window", "Khoảng thời gian không hợp lệ"),
    ("The admin role is required", "Cần có vai trò admin"),
    // Shared answers.
    ("Invalid request", "Yêu cầu không hợp lệ"),
    ("Wrong content type", "Sai kiểu nội dung"),
    ("Too many requests", "Quá nhiều yêu cầu"),
];
