# Puts the logging compilers first on PATH: nixpkgs' setup.sh builds PATH
# from _PATH after every input's setup hook has run.
_PATH="@out@/bin${_PATH:+:${_PATH}}"
