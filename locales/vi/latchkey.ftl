# latchkey — Tiếng Việt. Mỗi id phải có trong cả hai bản dịch (một bài kiểm thử sẽ báo lỗi nếu thiếu).

ui-language = Ngôn ngữ
ui-start-title = Khôi phục tài khoản
ui-start-intro = Nhập địa chỉ email của tài khoản. Chúng tôi sẽ gửi một mã gồm 6 chữ số đến địa chỉ này.
ui-start-email = Địa chỉ email
ui-start-submit = Gửi mã
ui-code-title = Nhập mã khôi phục
ui-code-intro = Nếu có tài khoản dùng địa chỉ này, mã gồm 6 chữ số đang được gửi đến. Mã có hiệu lực trong { $minutes } phút.
ui-code-code = Mã gồm 6 chữ số
ui-code-submit = Xác minh
ui-code-resend = Chưa nhận được mã? Gửi mã mới
ui-link-title = Hoàn tất khôi phục tài khoản
ui-link-intro = Bộ phận hỗ trợ đã bắt đầu khôi phục mật khẩu cho tài khoản này: { $account }. Chỉ tiếp tục nếu bạn đã yêu cầu họ.
ui-link-submit = Tiếp tục
ui-continue-title = Tiếp tục khôi phục tài khoản
ui-continue-intro = Bạn đã mở liên kết trong email khôi phục. Vui lòng tiếp tục để đặt mật khẩu mới trên thiết bị này. Sau đó, mã trong email sẽ không còn dùng được.
ui-continue-submit = Tiếp tục
ui-password-title = Đặt mật khẩu mới
ui-password-policy = Dùng ít nhất { $min } ký tự. Một vài từ không liên quan đến nhau sẽ tạo thành cụm mật khẩu mạnh và dễ nhớ. Mật khẩu không được chứa địa chỉ email hoặc tên đăng nhập của bạn.
ui-password-password = Mật khẩu mới
ui-password-submit = Đặt mật khẩu
ui-done-title = Mật khẩu của bạn đã được thay đổi
ui-done-intro = Bây giờ bạn có thể đăng nhập bằng mật khẩu mới. Tài khoản đã được đăng xuất khỏi mọi thiết bị khác.
ui-done-back = Quay lại ứng dụng
error-invalid_request = Yêu cầu không hợp lệ. Vui lòng kiểm tra lại dữ liệu đã gửi.
error-invalid_email = Vui lòng nhập địa chỉ email hợp lệ.
error-invalid_code_format = Mã phải gồm đúng 6 chữ số.
error-invalid_login = Vui lòng nhập địa chỉ email, tên đăng nhập hoặc số điện thoại theo định dạng quốc tế (+84…).
error-unsupported_media_type = Vui lòng gửi nội dung yêu cầu dưới dạng JSON với Content-Type: application/json.
error-payload_too_large = Nội dung yêu cầu quá lớn (tối đa 16 KiB).
error-invalid_code = Mã không hợp lệ hoặc đã hết hạn.
error-recovery_session_missing = Không có yêu cầu khôi phục nào đang diễn ra. Vui lòng bắt đầu lại để nhận mã mới.
error-recovery_session_expired = Yêu cầu khôi phục này đã hết hạn. Vui lòng bắt đầu lại để nhận mã mới.
error-recovery_not_verified = Vui lòng xác minh mã đã gửi cho bạn trước khi đặt mật khẩu.
error-too_many_attempts = Bạn đã nhập sai mã quá nhiều lần. Vui lòng bắt đầu lại để nhận mã mới.
error-rate_limited = Đã vượt quá số lần yêu cầu khôi phục. Vui lòng thử lại sau { $minutes } phút.
error-too_many_requests = Có quá nhiều yêu cầu. Vui lòng thử lại sau { $seconds } giây.
error-password_too_short = Mật khẩu phải có ít nhất { $min } ký tự.
error-password_too_long = Mật khẩu không được dài quá { $max } byte.
error-password_too_weak = Mật khẩu này quá dễ đoán. Vui lòng dùng một cụm mật khẩu dài hơn gồm các từ không liên quan đến nhau.
error-password_contains_identifier = Mật khẩu không được chứa địa chỉ email hoặc tên đăng nhập của bạn.
error-password_mismatch = Hai mật khẩu không khớp nhau.
error-invalid_credentials = Tài khoản hoặc mật khẩu không đúng.
error-unauthorized = Vui lòng đăng nhập để tiếp tục: phiên đăng nhập không tồn tại, đã hết hạn hoặc đã bị thu hồi.
error-forbidden = Bạn không có quyền thực hiện thao tác này.
error-not_found = Không tìm thấy.
error-account_not_found = Không tìm thấy tài khoản
error-method_not_allowed = Phương thức này không được phép ở đây.
error-conflict = { $what ->
        [username] Tên đăng nhập này
       *[other] Địa chỉ này
    } đã được sử dụng.
error-unavailable = Dịch vụ chưa sẵn sàng. Vui lòng thử lại sau ít phút.
error-overloaded = Máy chủ đang bận. Vui lòng thử lại sau { $seconds } giây.
error-internal = Đã xảy ra lỗi từ phía chúng tôi. Vui lòng thử lại sau ít phút.
