@echo off
rem kmsconf client activation script for KMS host `kms01` (kms01.corp.example:1689)
rem Generated from kmsconf.toml by kmsconf 0.1.0; regenerate it rather than edit it.
rem Run it once on each volume-licensed client, as an administrator.
rem The keys below are Microsoft's public KMS client setup keys (GVLKs), not secrets.
setlocal
set "KMS=kms01.corp.example:1689"

rem Windows 11 Enterprise / Windows 10 Enterprise
cscript //nologo "%windir%\System32\slmgr.vbs" /ipk NPPR9-FWDCX-D2C8J-H872K-2YT43 || goto :failed
rem Windows: use this KMS host, then activate
cscript //nologo "%windir%\System32\slmgr.vbs" /skms %KMS% || goto :failed
cscript //nologo "%windir%\System32\slmgr.vbs" /ato || goto :failed

rem Office 2019: ospp.vbs, the Office equivalent of slmgr.vbs
set "OSPP="
if exist "%ProgramFiles%\Microsoft Office\Office16\ospp.vbs" set "OSPP=%ProgramFiles%\Microsoft Office\Office16\ospp.vbs"
if exist "%ProgramFiles(x86)%\Microsoft Office\Office16\ospp.vbs" set "OSPP=%ProgramFiles(x86)%\Microsoft Office\Office16\ospp.vbs"
if not defined OSPP (echo ospp.vbs was not found under Microsoft Office\Office16 & goto :failed)
rem Office Professional Plus 2019
cscript //nologo "%OSPP%" /inpkey:NMMKJ-6RK4F-KMJVX-8D9MJ-6MWKP || goto :failed
rem Visio Professional 2019
cscript //nologo "%OSPP%" /inpkey:9BGNQ-K37YR-RQHF2-38RQ3-7VCBB || goto :failed
cscript //nologo "%OSPP%" /sethst:kms01.corp.example || goto :failed
cscript //nologo "%OSPP%" /setprt:1689 || goto :failed
cscript //nologo "%OSPP%" /act || goto :failed

echo Activation requested from %KMS%.
exit /b 0
:failed
echo Activation failed: run `kmsconf explain CODE` with the error code shown above. 1>&2
exit /b 1
