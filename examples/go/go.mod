module loadtest.example/quickstart

go 1.24
