# latchkey — English. Message ids are stable; { $name } marks a value filled in.

ui-language = Language
ui-start-title = Recover your account
ui-start-intro = Enter the email address of your account. We will send a 6-digit code to it.
ui-start-email = Email address
ui-start-submit = Send code
ui-code-title = Enter your recovery code
ui-code-intro = If an account uses this address, a 6-digit code is on its way. It expires in { $minutes ->
        [one] 1 minute
       *[other] { $minutes } minutes
    }.
ui-code-code = 6-digit code
ui-code-submit = Verify
ui-code-resend = Didn't get a code? Send a new one
ui-link-title = Finish your recovery
ui-link-intro = Support started a password recovery for this account: { $account }. Continue only if you asked them for it.
ui-link-submit = Continue
ui-continue-title = Continue your recovery
ui-continue-intro = You opened the link from your recovery email. Continue to choose a new password on this device. The code in that email stops working once you do.
ui-continue-submit = Continue
ui-report-not_requested-title = Cancel this recovery?
ui-report-not_requested-intro = If you did not ask for a recovery code, cancel the recovery here: the codes and links already sent stop working, and no new code is sent to your account for { $minutes ->
        [one] 1 minute
       *[other] { $minutes } minutes
    }.
ui-report-not_requested-submit = Cancel the recovery
ui-report-not_me-title = Secure your account?
ui-report-not_me-intro = If you did not change your password, secure your account now: every device is signed out, any recovery in progress is cancelled, and the account is frozen (no one can sign in or recover it) until support restores it.
ui-report-not_me-submit = Secure my account
ui-report-cancelled-title = Recovery cancelled
ui-report-cancelled-intro = The codes and links sent to you no longer work, and no new code will be sent for { $minutes ->
        [one] 1 minute
       *[other] { $minutes } minutes
    }. Your password has not changed.
ui-report-secured-title = Your account is secured
ui-report-secured-intro = Every device was signed out and the account is frozen. A confirmation was sent to your addresses. To restore the account, contact support.
ui-report-used-title = This link was already used
ui-report-used-intro = Nothing more was done.
ui-report-invalid-title = This link does not work
ui-report-invalid-intro = The link is invalid or has expired. If you are worried about your account, contact support.
ui-report-support = Support: { $contact }
ui-password-title = Choose a new password
ui-password-account = For the account { $account }.
ui-password-policy = Use at least { $min } characters. A few unrelated words make a strong passphrase that is easy to remember. It must not contain your email address or username.
ui-password-password = New password
ui-password-submit = Set password
ui-done-title = Your password was changed
ui-done-intro = You can now sign in with your new password. Every other session was signed out.
ui-done-back = Back to the application
error-invalid_request = The request is invalid: { $detail }
error-invalid_email = Enter a valid email address.
error-invalid_code_format = The code must be exactly 6 digits.
error-invalid_login = Enter an email address, a username or a phone number in international form (+84…).
error-unsupported_media_type = Send the request body as JSON with Content-Type: application/json.
error-payload_too_large = The request body is too large (16 KiB at most).
error-invalid_code = Invalid or expired code.
error-recovery_session_missing = No recovery is in progress. Start again to get a new code.
error-recovery_session_expired = This recovery has expired. Start again to get a new code.
error-recovery_not_verified = Verify the code we sent you before setting a password.
error-too_many_attempts = Too many wrong codes. Start again to get a new code.
error-rate_limited = Recovery attempts exceeded. Try again in { $minutes ->
        [one] 1 minute
       *[other] { $minutes } minutes
    }.
error-too_many_requests = Too many requests. Try again in { $seconds ->
        [one] 1 second
       *[other] { $seconds } seconds
    }.
error-password_too_short = The password must be at least { $min } characters long.
error-password_too_long = The password must be at most { $max } bytes long.
error-password_too_weak = This password is too easy to guess. Use a longer passphrase of unrelated words.
error-password_contains_identifier = The password must not contain your email address or username.
error-password_mismatch = The two passwords do not match.
error-invalid_credentials = The login or password is incorrect.
error-unauthorized = Sign in to continue: the session is missing, expired or revoked.
error-forbidden = You are not allowed to do this.
error-not_found = Not found.
error-account_not_found = Account not found
error-method_not_allowed = This method is not allowed here.
error-conflict = { $what ->
        [username] That username
       *[other] That address
    } is already in use.
error-unavailable = The service is not ready. Try again in a moment.
error-overloaded = The server is busy. Try again in { $seconds ->
        [one] 1 second
       *[other] { $seconds } seconds
    }.
error-internal = Something went wrong on our side. Try again in a moment.
