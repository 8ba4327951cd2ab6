__declspec(dllimport) unsigned long __stdcall GetTickCount(void);
__declspec(dllimport) void __stdcall ExitProcess(unsigned int);
__declspec(dllimport) int rs_by_ordinal(void);
__declspec(dllimport) int RS_Named(void);
void start(void) { ExitProcess(GetTickCount() + rs_by_ordinal() + RS_Named()); }
