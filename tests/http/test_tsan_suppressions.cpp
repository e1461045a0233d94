// Under ThreadSanitizer, this test executable ignores one race inside Debian's
// cpp-httplib (built without TSan): two of its workers streaming at once (the
// in-process servers' event streams) write and send a buffer of the library's
// own, which tether's code never touches. Only reports through the library's
// send_socket are left out; the library's locks stay visible to TSan (a
// `called_from_lib` suppression would hide them and report false races
// elsewhere). No test case lives here.
#if defined(__SANITIZE_THREAD__)
#define TETHER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TETHER_TSAN 1
#endif
#endif

#ifdef TETHER_TSAN
extern "C" const char* __tsan_default_suppressions();
extern "C" const char* __tsan_default_suppressions() { return "race:httplib::detail::send_socket\n"; }
#endif
